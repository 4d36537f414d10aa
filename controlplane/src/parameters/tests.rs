use super::*;
use crate::store::MemoryStore;

struct FixedClock;
impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        1_700_000_000_000
    }
}

fn sealer() -> Arc<Sealer> {
    static SEALER: std::sync::OnceLock<Arc<Sealer>> = std::sync::OnceLock::new();
    SEALER.get_or_init(|| Arc::new(Sealer::ephemeral())).clone()
}

fn parameters(store: Arc<MemoryStore>) -> Parameters {
    Parameters::open(
        store,
        Arc::new(FixedClock),
        ArnContext {
            region: "us-east-1".into(),
            account: "123456789012".into(),
        },
        sealer(),
    )
    .unwrap()
}

fn put(name: &str, value: &str, kind: Option<ParameterType>, overwrite: bool) -> PutInput {
    PutInput {
        name: name.into(),
        value: value.into(),
        kind,
        overwrite,
        ..PutInput::default()
    }
}

#[test]
fn versions_are_kept_and_survive_a_reopen() {
    let store = Arc::new(MemoryStore::default());
    let ps = parameters(store.clone());
    let p = ps
        .put(
            "us-east-1",
            "AKID",
            put(
                "/app/db/password",
                "s3cret",
                Some(ParameterType::SecureString),
                false,
            ),
        )
        .unwrap();
    assert_eq!(
        p.arn,
        "arn:aws:ssm:us-east-1:123456789012:parameter/app/db/password"
    );
    assert_eq!(p.current().key_id.as_deref(), Some(DEFAULT_KEY_ID));
    assert_eq!(
        ps.put(
            "us-east-1",
            "AKID",
            put("/app/db/password", "again", None, false)
        ),
        Err(ParameterError::Exists)
    );
    let p = ps
        .put(
            "us-east-1",
            "AKID",
            put("/app/db/password", "n3w", None, true),
        )
        .unwrap();
    assert_eq!(p.current().version, 2);
    assert_eq!(
        p.current().kind,
        ParameterType::SecureString,
        "the type is kept"
    );

    let again = parameters(store);
    let (p, v) = again.get("/app/db/password").unwrap();
    assert_eq!((v.version, v.value.as_str()), (2, "n3w"));
    let (_, v1) = again.get("/app/db/password:1").unwrap();
    assert_eq!(v1.value, "s3cret");
    let (_, by_arn) = again.get(&p.arn).unwrap();
    assert_eq!(by_arn.version, 2);
    assert!(matches!(
        again.get("/app/db/password:9"),
        Err(ParameterError::VersionNotFound { .. })
    ));
    let hidden = again.shown(&p, &v, false);
    assert!(!hidden.contains("n3w") && !hidden.is_empty(), "{hidden}");
    assert_eq!(again.shown(&p, &v, true), "n3w");
}

#[test]
fn bad_names_and_values_are_refused_as_ssm_refuses_them() {
    let ps = parameters(Arc::new(MemoryStore::default()));
    let t = Some(ParameterType::String);
    for bad in ["", "aws-thing", "/ssm/x", "a/b", "/a//b", "/a/", "sp ace"] {
        assert!(
            matches!(
                ps.put("r", "k", put(bad, "v", t, false)),
                Err(ParameterError::Name(_))
            ),
            "{bad:?}"
        );
    }
    let deep = format!("/{}", vec!["l"; 16].join("/"));
    assert!(matches!(
        ps.put("r", "k", put(&deep, "v", t, false)),
        Err(ParameterError::HierarchyLevels(_))
    ));
    assert!(matches!(
        ps.put("r", "k", put("/x", "", t, false)),
        Err(ParameterError::Validation(_))
    ));
    assert!(matches!(
        ps.put("r", "k", put("/x", &"v".repeat(4097), t, false)),
        Err(ParameterError::Validation(_))
    ));
    assert!(matches!(
        ps.put("r", "k", put("/x", "v", None, false)),
        Err(ParameterError::Validation(_))
    ));
    let mut patterned = put("/x", "abc", t, false);
    patterned.allowed_pattern = Some("^[0-9]+$".into());
    assert!(matches!(
        ps.put("r", "k", patterned),
        Err(ParameterError::Validation(_))
    ));
}

#[test]
fn at_most_a_hundred_versions_are_kept() {
    let ps = parameters(Arc::new(MemoryStore::default()));
    for i in 0..105 {
        ps.put(
            "r",
            "k",
            put("n", &i.to_string(), Some(ParameterType::String), true),
        )
        .unwrap();
    }
    let (p, v) = ps.get("n").unwrap();
    assert_eq!(p.versions.len(), MAX_VERSIONS);
    assert_eq!(p.versions[0].version, 6);
    assert_eq!(v.version, 105);
}

#[test]
fn value_from_resolves_parameter_arns_and_existing_names() {
    let ps = parameters(Arc::new(MemoryStore::default()));
    ps.put(
        "us-east-1",
        "k",
        put(
            "/db/url",
            "postgres://db",
            Some(ParameterType::String),
            false,
        ),
    )
    .unwrap();
    ps.put(
        "us-east-1",
        "k",
        put("token", "t0k", Some(ParameterType::SecureString), false),
    )
    .unwrap();
    let arn = "arn:aws:ssm:us-east-1:123456789012:parameter/db/url";
    assert_eq!(ps.resolve(arn), Some(Ok("postgres://db".into())));
    assert_eq!(ps.resolve("token"), Some(Ok("t0k".into())));
    assert_eq!(
        ps.resolve("not-a-parameter"),
        None,
        "left to Secrets Manager"
    );
    let missing = ps
        .resolve("arn:aws:ssm:us-east-1:123456789012:parameter/nope")
        .unwrap()
        .unwrap_err();
    assert!(missing.contains("Parameter nope not found"), "{missing}");
    assert_eq!(name_of("arn:aws:ssm:r:1:parameter/a/b"), "/a/b");
    assert_eq!(name_of("arn:aws:ssm:r:1:parameter/x"), "x");
}
