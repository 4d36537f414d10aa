//! JSON request bodies into serde types, with the errors AWS gives for bad ones.

use serde::de::DeserializeOwned;

use super::error::{ApiError, ErrorType};

/// Parses a request body; an empty body counts as `{}` (some clients send none).
pub fn parse<T: DeserializeOwned>(op: &str, body: &[u8]) -> Result<T, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| from_json_error(op, &e))
}

/// Turns a request-body decoding failure into the error AWS gives: bad JSON is
/// a `SerializationException`, a missing or mistyped member an
/// `InvalidParameterException` naming the member.
pub fn from_json_error(op: &str, e: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => ApiError::new(
            ErrorType::Serialization,
            format!("The request body of {op} is not valid JSON: {e}."),
        ),
        Category::Data => {
            let text = e.to_string();
            let text = text.split(" at line ").next().unwrap_or(&text);
            let message = match text.strip_prefix("missing field `") {
                Some(rest) => format!(
                    "Missing required parameter in {op} input: \"{}\".",
                    rest.trim_end_matches('`')
                ),
                None => format!("Invalid {op} input: {text}."),
            };
            ApiError::invalid(message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_name_the_problem() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct In {
            family: String,
        }
        let e = serde_json::from_slice::<In>(b"{").unwrap_err();
        assert_eq!(from_json_error("Op", &e).kind, ErrorType::Serialization);
        let e = serde_json::from_slice::<In>(b"{}").unwrap_err();
        let api = from_json_error("RegisterTaskDefinition", &e);
        assert_eq!(api.kind, ErrorType::InvalidParameter);
        assert_eq!(
            api.message,
            "Missing required parameter in RegisterTaskDefinition input: \"family\"."
        );
        let e = serde_json::from_slice::<In>(br#"{"family": 3}"#).unwrap_err();
        assert!(from_json_error("Op", &e).message.contains("invalid type"));
    }
}
