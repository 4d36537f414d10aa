//! The front door: one HTTP request in, one response out. Works out which protocol the
//! request speaks, checks its signature, routes it to the service it is for (by
//! `X-Amz-Target` prefix, or by the service and API version a query request names), and
//! renders the answer or the error the way that protocol's clients parse it.

use std::sync::Arc;

use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, Method, Response, StatusCode, Uri};
use serde_json::{json, Value};

use crate::error::AwsError;
use crate::query::QueryParams;
use crate::service::{AwsService, Call, Input, JsonVersion, Protocol};
use crate::sigv4::{self, SignedRequest, VerifiedIdentity};
use crate::xml;

/// One HTTP request as received; the body is the raw bytes the signature covers.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a> {
    pub method: &'a Method,
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

type SecretLookup = dyn Fn(&str) -> Option<String> + Send + Sync;

/// The services Berth serves, behind one endpoint and one set of access keys.
pub struct Edge {
    services: Vec<Arc<dyn AwsService>>,
    secret_of: Box<SecretLookup>,
}

/// What the request says it speaks.
enum Wire<'a> {
    Json {
        target: &'a str,
        version: JsonVersion,
        /// `x-amzn-query-mode: true`: the client would rather read query error codes.
        query_mode: bool,
    },
    Query(QueryParams),
    Unknown,
}

impl<'a> Wire<'a> {
    fn of(req: &HttpRequest<'a>) -> Self {
        let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
        if let Some(target) = header("x-amz-target") {
            let version = match header("content-type") {
                Some(t) if t.starts_with(JsonVersion::V1_0.content_type()) => JsonVersion::V1_0,
                _ => JsonVersion::V1_1,
            };
            return Wire::Json {
                target,
                version,
                query_mode: header("x-amzn-query-mode") == Some("true"),
            };
        }
        let form = header("content-type")
            .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
        if *req.method == Method::POST && form {
            return Wire::Query(QueryParams::parse(req.body));
        }
        match req.uri.query() {
            Some(q) if *req.method == Method::GET && q.contains("Action=") => {
                Wire::Query(QueryParams::parse(q.as_bytes()))
            }
            _ => Wire::Unknown,
        }
    }
}

/// Where a call went: the service, and whether its JSON errors carry query codes.
struct Routed<'s> {
    service: &'s dyn AwsService,
    operation: String,
}

impl Edge {
    /// `secret_of` maps an access key id to its secret access key.
    ///
    /// # Panics
    /// If two services claim the same `X-Amz-Target` prefix, or the same signing name and
    /// query API version: the routing table is fixed at build time.
    pub fn new(
        services: Vec<Arc<dyn AwsService>>,
        secret_of: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        for (i, a) in services.iter().enumerate() {
            for b in &services[i + 1..] {
                let (a, b) = (a.info(), b.info());
                if let (Some(x), Some(y)) = (a.json, b.json) {
                    assert!(
                        x.target_prefix != y.target_prefix,
                        "{} twice",
                        x.target_prefix
                    );
                }
                if let (Some(x), Some(y)) = (a.query, b.query) {
                    assert!(
                        a.signing_name != b.signing_name || x.version != y.version,
                        "{} {} twice",
                        a.signing_name,
                        x.version
                    );
                }
            }
        }
        Self {
            services,
            secret_of: Box::new(secret_of),
        }
    }

    /// Answers one request; `now_unix` is the time its signature is checked against.
    pub fn handle(
        &self,
        req: &HttpRequest<'_>,
        request_id: &str,
        now_unix: i64,
    ) -> Response<Vec<u8>> {
        let wire = Wire::of(req);
        let mut routed = None;
        let result = self.authenticate(req, now_unix).and_then(|identity| {
            let r = self.route(&wire, &identity, req.method)?;
            let (protocol, input) = match &wire {
                Wire::Json { version, .. } => (Protocol::Json(*version), Input::Json(req.body)),
                Wire::Query(params) => (Protocol::Query, Input::Query(params)),
                Wire::Unknown => unreachable!("route refuses requests of no protocol"),
            };
            let call = Call {
                operation: &r.operation,
                protocol,
                region: &identity.region,
                access_key_id: &identity.access_key_id,
                request_id,
                host: host_of(req),
                input,
            };
            let result = r.service.call(&call);
            routed = Some(r);
            result
        });
        if let Err(e) = &result {
            let service = routed.as_ref().map(|r| r.service.info().signing_name);
            tracing::info!(
                service,
                operation = routed.as_ref().map(|r| r.operation.as_str()),
                code = %e.code,
                message = %e.message,
                "request refused"
            );
        }
        render(&wire, routed.as_ref(), result, request_id)
    }

    fn authenticate(
        &self,
        req: &HttpRequest<'_>,
        now_unix: i64,
    ) -> Result<VerifiedIdentity, AwsError> {
        let mut headers: Vec<(String, String)> = req
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        // HTTP/2 carries the host as `:authority`, which arrives in the URI.
        if !req.headers.contains_key("host") {
            if let Some(authority) = req.uri.authority() {
                headers.push(("host".to_owned(), authority.to_string()));
            }
        }
        let signed = SignedRequest {
            method: req.method.as_str(),
            path: req.uri.path(),
            query: req.uri.query().unwrap_or(""),
            headers: &headers,
            body: req.body,
        };
        let identity = sigv4::verify(&signed, &self.secret_of, now_unix)?;
        // The region goes into ARNs (and back out of them): only AWS's alphabet for it.
        let region = &identity.region;
        if !region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(AwsError::new(
                "InvalidSignatureException",
                403,
                format!("Credential should be scoped to a valid region, not '{region}'."),
            )
            .with_query_code("SignatureDoesNotMatch"));
        }
        Ok(identity)
    }

    /// Whether any service is signed for as `signing_name`.
    fn serves(&self, signing_name: &str) -> bool {
        self.services
            .iter()
            .any(|s| s.info().signing_name == signing_name)
    }

    /// A JSON request whose target prefix no service has: for a service Berth serves,
    /// the prefixes it answers to; otherwise, that Berth does not serve it.
    fn unknown_target(&self, scope: &str, target: &str) -> AwsError {
        let prefixes: Vec<&str> = self
            .services
            .iter()
            .filter(|s| s.info().signing_name == scope)
            .filter_map(|s| s.info().json.map(|j| j.target_prefix))
            .collect();
        let message = if prefixes.is_empty() {
            format!(
                "Berth does not serve the AWS service '{scope}' (X-Amz-Target '{target}'). \
                 It serves {}.",
                self.served()
            )
        } else {
            format!(
                "X-Amz-Target '{target}' names no operation Berth serves for '{scope}': its \
                 target prefixes are {}.",
                prefixes.join(", ")
            )
        };
        AwsError::unknown_operation(message)
    }

    fn served(&self) -> String {
        let mut names: Vec<&str> = self
            .services
            .iter()
            .map(|s| s.info().signing_name)
            .collect();
        names.sort_unstable();
        names.dedup();
        names.join(", ")
    }

    fn route(
        &self,
        wire: &Wire<'_>,
        identity: &VerifiedIdentity,
        method: &Method,
    ) -> Result<Routed<'_>, AwsError> {
        let scope = identity.service.as_str();
        match wire {
            Wire::Json { target, .. } => {
                let (prefix, operation) = target.rsplit_once('.').ok_or_else(|| {
                    AwsError::unknown_operation(format!(
                        "X-Amz-Target '{target}' is not of the form <TargetPrefix>.<Operation>."
                    ))
                })?;
                let service = self
                    .services
                    .iter()
                    .find(|s| s.info().json.is_some_and(|j| j.target_prefix == prefix))
                    .ok_or_else(|| self.unknown_target(scope, target))?;
                check_scope(service.as_ref(), scope)?;
                if *method != Method::POST {
                    return Err(AwsError::unknown_operation(format!(
                        "{method} is not how AWS JSON is called: send POST with X-Amz-Target."
                    )));
                }
                Ok(Routed {
                    service: service.as_ref(),
                    operation: operation.to_owned(),
                })
            }
            Wire::Query(params) => {
                if params.action.is_empty() {
                    return Err(AwsError::client(
                        "MissingAction",
                        "The request must contain the parameter Action.",
                    ));
                }
                let named: Vec<&Arc<dyn AwsService>> = self
                    .services
                    .iter()
                    .filter(|s| s.info().query.is_some() && s.info().signing_name == scope)
                    .collect();
                if named.is_empty() {
                    let how = if self.serves(scope) {
                        format!("Berth serves '{scope}' over AWS JSON (X-Amz-Target), not")
                    } else {
                        format!("Berth does not serve the AWS service '{scope}' over")
                    };
                    return Err(AwsError::invalid_action(format!(
                        "{how} the AWS query protocol (Action '{}'). It serves {}.",
                        params.action,
                        self.served()
                    )));
                }
                let service = *named
                    .iter()
                    .find(|s| s.info().query.is_some_and(|q| q.version == params.version))
                    .ok_or_else(|| {
                        let versions: Vec<&str> = named
                            .iter()
                            .filter_map(|s| s.info().query.map(|q| q.version))
                            .collect();
                        AwsError::invalid_action(format!(
                            "Berth serves '{scope}' at API version {}, not Version '{}'.",
                            versions.join(", "),
                            params.version
                        ))
                    })?;
                Ok(Routed {
                    service: service.as_ref(),
                    operation: params.action.clone(),
                })
            }
            Wire::Unknown => Err(AwsError::unknown_operation(format!(
                "The request names no operation: AWS JSON sends an X-Amz-Target header, the AWS \
                 query protocol a form-encoded Action. Berth serves {}.",
                self.served()
            ))),
        }
    }
}

/// A request signed for another service than the one it calls is refused, as AWS does.
fn check_scope(service: &dyn AwsService, scope: &str) -> Result<(), AwsError> {
    let expected = service.info().signing_name;
    if scope == expected {
        Ok(())
    } else {
        Err(AwsError::new(
            "InvalidSignatureException",
            403,
            format!("Credential should be scoped to correct service: '{expected}'."),
        )
        .with_query_code("SignatureDoesNotMatch"))
    }
}

fn render(
    wire: &Wire<'_>,
    routed: Option<&Routed<'_>>,
    result: Result<Value, AwsError>,
    request_id: &str,
) -> Response<Vec<u8>> {
    let (status, content_type, body, query_error) = match (wire, result) {
        (Wire::Query(params), Ok(value)) => {
            let xmlns = routed
                .and_then(|r| r.service.info().query)
                .map_or("", |q| q.xmlns);
            let body = xml::response(&params.action, xmlns, request_id, &value);
            (200, "text/xml", body.into_bytes(), None)
        }
        (Wire::Query(_), Err(e)) => (
            e.status,
            "text/xml",
            xml::error(&e, request_id).into_bytes(),
            None,
        ),
        (Wire::Json { version, .. }, Ok(value)) => (
            200,
            version.content_type(),
            value.to_string().into_bytes(),
            None,
        ),
        (wire, Err(e)) => {
            let (version, query_mode) = match wire {
                Wire::Json {
                    version,
                    query_mode,
                    ..
                } => (*version, *query_mode),
                _ => (JsonVersion::V1_1, false),
            };
            let query_compatible = routed
                .and_then(|r| r.service.info().json)
                .map_or(query_mode, |j| j.query_compatible);
            let query_error =
                query_compatible.then(|| format!("{};{}", e.code_for_query(), e.fault()));
            let body = json!({ "__type": e.code, "message": e.message });
            (
                e.status,
                version.content_type(),
                body.to_string().into_bytes(),
                query_error,
            )
        }
        (Wire::Unknown, Ok(_)) => unreachable!("route refuses requests of no protocol"),
    };
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert(HeaderName::from_static("x-amzn-requestid"), v);
    }
    if let Some(v) = query_error.and_then(|q| HeaderValue::from_str(&q).ok()) {
        headers.insert(HeaderName::from_static("x-amzn-query-error"), v);
    }
    response
}

#[cfg(test)]
mod tests;

/// The host a request addressed.
fn host_of<'a>(req: &HttpRequest<'a>) -> &'a str {
    req.headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri.authority().map(http::uri::Authority::as_str))
        .unwrap_or_default()
}
