//! Which action a request gets: a listener's rules by priority, then its default
//! actions. Pure: the proxy hands in what it read from the request.

use std::net::IpAddr;

use super::model::{Action, Condition, Rule};

/// What rules look at in a request.
#[derive(Debug, Clone, Default)]
pub struct RequestView<'a> {
    pub method: &'a str,
    /// The `Host` header without its port.
    pub host: &'a str,
    pub path: &'a str,
    /// The raw query string, without `?`.
    pub query: &'a str,
    pub headers: Vec<(&'a str, &'a str)>,
    pub source: Option<IpAddr>,
}

/// ELB's patterns: `*` any run of characters, `?` one character.
pub fn wildcard(pattern: &str, text: &str, case_sensitive: bool) -> bool {
    let fold = |s: &str| -> Vec<char> {
        if case_sensitive {
            s.chars().collect()
        } else {
            s.chars().flat_map(char::to_lowercase).collect()
        }
    };
    let (p, t) = (fold(pattern), fold(text));
    // Iterative matching with backtracking to the last `*`.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

fn in_cidr(cidr: &str, ip: IpAddr) -> bool {
    let (net, bits) = cidr.split_once('/').unwrap_or((cidr, "32"));
    let (Ok(IpAddr::V4(net)), Ok(bits), IpAddr::V4(ip)) =
        (net.parse::<IpAddr>(), bits.parse::<u32>(), ip)
    else {
        return false;
    };
    if bits > 32 {
        return false;
    }
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    u32::from(net) & mask == u32::from(ip) & mask
}

fn query_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn holds(c: &Condition, r: &RequestView<'_>) -> bool {
    match c {
        Condition::PathPattern(patterns) => patterns.iter().any(|p| wildcard(p, r.path, true)),
        Condition::HostHeader(patterns) => patterns.iter().any(|p| wildcard(p, r.host, false)),
        Condition::HttpHeader { name, values } => r
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .any(|(_, v)| values.iter().any(|p| wildcard(p, v, false))),
        Condition::QueryString(pairs) => {
            let query = query_pairs(r.query);
            pairs.iter().any(|(key, value)| {
                query.iter().any(|(k, v)| {
                    key.as_ref().is_none_or(|key| wildcard(key, k, false))
                        && wildcard(value, v, false)
                })
            })
        }
        Condition::HttpRequestMethod(methods) => methods.iter().any(|m| m == r.method),
        Condition::SourceIp(cidrs) => r
            .source
            .is_some_and(|ip| cidrs.iter().any(|c| in_cidr(c, ip))),
    }
}

/// The actions for `request`: the first rule (by priority) whose conditions all hold,
/// else the defaults. `rules` must be sorted by priority.
pub fn route<'a>(
    rules: &[&'a Rule],
    defaults: &'a [Action],
    request: &RequestView<'_>,
) -> &'a [Action] {
    rules
        .iter()
        .find(|rule| rule.conditions.iter().all(|c| holds(c, request)))
        .map_or(defaults, |rule| &rule.actions)
}

/// One of a forward's target groups, by weight; `pick` is a number in `0..total` (the
/// caller's random draw). `None` when every weight is 0.
pub fn pick_weighted(groups: &[(String, u32)], pick: u32) -> Option<&str> {
    let mut left = pick;
    for (arn, weight) in groups {
        if left < *weight {
            return Some(arn);
        }
        left -= weight;
    }
    None
}

/// The total weight of a forward, counting a lone group's weight (which ELB lets be
/// omitted) as 1.
pub fn total_weight(groups: &[(String, u32)]) -> u32 {
    groups.iter().map(|(_, w)| *w).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(priority: u32, conditions: Vec<Condition>, to: &str) -> Rule {
        Rule {
            arn: format!("rule-{priority}"),
            listener_arn: "l".into(),
            priority,
            conditions,
            actions: vec![Action::Forward(vec![(to.into(), 1)])],
            tags: vec![],
        }
    }

    fn target(actions: &[Action]) -> &str {
        match &actions[0] {
            Action::Forward(g) => &g[0].0,
            _ => "other",
        }
    }

    #[test]
    fn wildcards_match_as_elb_documents() {
        assert!(wildcard("/api/*", "/api/v1/users", true));
        assert!(wildcard("/api/*", "/api/", true));
        assert!(!wildcard("/api/*", "/api", true));
        assert!(
            !wildcard("/API/*", "/api/x", true),
            "paths are case-sensitive"
        );
        assert!(
            wildcard("*.example.com", "API.Example.com", false),
            "hosts are not"
        );
        assert!(wildcard("img?.png", "img1.png", true));
        assert!(!wildcard("img?.png", "img12.png", true));
        assert!(wildcard("*a*b", "xxaxxb", true));
        assert!(!wildcard("*a*b", "xxaxxbc", true));
    }

    #[test]
    fn the_first_matching_rule_by_priority_wins_else_the_default() {
        let api = rule(
            10,
            vec![Condition::PathPattern(vec!["/api/*".into()])],
            "api",
        );
        let host = rule(
            20,
            vec![Condition::HostHeader(vec!["api.example.com".into()])],
            "host",
        );
        let defaults = vec![Action::Forward(vec![("web".into(), 1)])];
        let rules = [&api, &host];
        let req = |host: &'static str, path: &'static str| RequestView {
            method: "GET",
            host,
            path,
            ..RequestView::default()
        };
        assert_eq!(
            target(route(&rules, &defaults, &req("api.example.com", "/api/x"))),
            "api"
        );
        assert_eq!(
            target(route(&rules, &defaults, &req("api.example.com", "/"))),
            "host"
        );
        assert_eq!(
            target(route(&rules, &defaults, &req("www.example.com", "/"))),
            "web"
        );
    }

    #[test]
    fn every_condition_of_a_rule_must_hold() {
        let r = rule(
            1,
            vec![
                Condition::HttpRequestMethod(vec!["POST".into()]),
                Condition::HttpHeader {
                    name: "X-Env".into(),
                    values: vec!["canary*".into()],
                },
                Condition::QueryString(vec![(Some("v".into()), "2".into())]),
                Condition::SourceIp(vec!["10.0.0.0/8".into()]),
            ],
            "canary",
        );
        let defaults = vec![Action::Forward(vec![("main".into(), 1)])];
        let mut req = RequestView {
            method: "POST",
            host: "h",
            path: "/",
            query: "a=1&v=2",
            headers: vec![("x-env", "Canary-1")],
            source: Some("10.1.2.3".parse().unwrap()),
        };
        assert_eq!(target(route(&[&r], &defaults, &req)), "canary");
        req.source = Some("192.168.0.1".parse().unwrap());
        assert_eq!(target(route(&[&r], &defaults, &req)), "main");
    }

    #[test]
    fn weights_split_the_draws() {
        let groups = vec![("blue".to_string(), 90), ("green".to_string(), 10)];
        assert_eq!(total_weight(&groups), 100);
        assert_eq!(pick_weighted(&groups, 0), Some("blue"));
        assert_eq!(pick_weighted(&groups, 89), Some("blue"));
        assert_eq!(pick_weighted(&groups, 90), Some("green"));
        assert_eq!(pick_weighted(&groups, 100), None);
    }
}
