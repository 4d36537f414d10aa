//! The `awslogs` log driver's options, read the same way by the control plane (which
//! checks them when a task definition registers) and the agent (which ships by them).

/// The `logConfiguration.options` keys of the awslogs driver.
pub const GROUP: &str = "awslogs-group";
pub const REGION: &str = "awslogs-region";
pub const STREAM_PREFIX: &str = "awslogs-stream-prefix";
pub const CREATE_GROUP: &str = "awslogs-create-group";
pub const DATETIME_FORMAT: &str = "awslogs-datetime-format";
pub const MULTILINE_PATTERN: &str = "awslogs-multiline-pattern";
pub const MODE: &str = "mode";
pub const MAX_BUFFER_SIZE: &str = "max-buffer-size";

/// Docker's default `max-buffer-size` for `mode: non-blocking`.
pub const DEFAULT_MAX_BUFFER_BYTES: u64 = 1 << 20;

/// A buffer size as Docker writes it: bytes, or a number with k, m or g (and an
/// optional b): `4096`, `512k`, `1m`, `1mb`.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let (digits, unit) = match s.strip_suffix('b').unwrap_or(&s) {
        t if t.ends_with('k') => (&t[..t.len() - 1], 1 << 10),
        t if t.ends_with('m') => (&t[..t.len() - 1], 1 << 20),
        t if t.ends_with('g') => (&t[..t.len() - 1], 1 << 30),
        t => (t, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .and_then(|n| n.checked_mul(unit))
}

/// The log stream a container's events go to, as ECS names it: with a prefix,
/// `prefix/container-name/task-id`; without one, the container's runtime id.
pub fn stream_name(
    prefix: Option<&str>,
    container: &str,
    task_id: &str,
    runtime_id: &str,
) -> String {
    match prefix.filter(|p| !p.is_empty()) {
        Some(p) => format!("{p}/{container}/{task_id}"),
        None => runtime_id.to_owned(),
    }
}

/// `awslogs-datetime-format` as the regular expression that finds where a new event
/// starts: the `strftime` directives Docker's driver knows, anchored at the line's start,
/// other characters literal.
pub fn datetime_pattern(format: &str) -> Result<String, String> {
    let mut out = String::from("^");
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            escape_into(&mut out, c);
            continue;
        }
        let d = chars
            .next()
            .ok_or("awslogs-datetime-format ends with a lone '%'")?;
        let piece = match d {
            'a' => r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)",
            'A' => r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)",
            'b' => r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)",
            'B' => {
                r"(?:January|February|March|April|May|June|July|August|September|October|November|December)"
            }
            'd' | 'm' | 'H' | 'I' | 'M' | 'S' | 'y' | 'U' | 'W' => r"\d{2}",
            'e' | 'k' | 'l' => r"[ \d]\d",
            'f' => r"\d{6}",
            'j' => r"\d{3}",
            'L' => r"\.\d{3}",
            'p' => r"(?:AM|PM)",
            'w' => r"\d",
            'Y' => r"\d{4}",
            'z' => r"[+-]\d{4}",
            'Z' => r"[A-Z]{1,5}",
            'T' => r"\d{2}:\d{2}:\d{2}",
            'D' => r"\d{2}/\d{2}/\d{2}",
            '%' => "%",
            other => {
                return Err(format!(
                "awslogs-datetime-format: '%{other}' is not a directive the awslogs driver knows"
            ))
            }
        };
        out.push_str(piece);
    }
    Ok(out)
}

fn escape_into(out: &mut String, c: char) {
    if r"\.+*?()|[]{}^$#&-~".contains(c) {
        out.push('\\');
    }
    out.push(c);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_docker_writes_them() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("512k"), Some(512 << 10));
        assert_eq!(parse_size("1m"), Some(1 << 20));
        assert_eq!(parse_size("2MB"), Some(2 << 20));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size("0"), None);
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("99999999999g"), None);
    }

    #[test]
    fn stream_names_follow_ecs() {
        assert_eq!(
            stream_name(Some("web"), "app", "abc123", "rid"),
            "web/app/abc123"
        );
        assert_eq!(stream_name(None, "app", "abc123", "rid"), "rid");
        assert_eq!(stream_name(Some(""), "app", "abc123", "rid"), "rid");
    }

    #[test]
    fn datetime_formats_become_anchored_patterns() {
        assert_eq!(
            datetime_pattern("[%Y-%m-%d %H:%M:%S]").unwrap(),
            r"^\[\d{4}\-\d{2}\-\d{2} \d{2}:\d{2}:\d{2}\]"
        );
        assert_eq!(
            datetime_pattern("%b %e").unwrap(),
            r"^(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d"
        );
        assert!(datetime_pattern("%Q").unwrap_err().contains("'%Q'"));
        assert!(datetime_pattern("%").is_err());
    }
}
