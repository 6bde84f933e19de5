//! Variable substitution, as ksqlDB's `DEFINE` documents it: `${name}` anywhere in a statement's
//! text (identifiers, string and other literals) is replaced by the variable's value before the
//! statement is parsed; names are case-insensitive; `$${name}` stands for the text `${name}`.

use crate::error::{PlanError, Result};

/// Session variables in definition order (names as defined, matched case-insensitively).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Variables {
    vars: Vec<(String, String)>,
}

impl Variables {
    /// Defines (or redefines) `name`.
    pub fn define(&mut self, name: &str, value: &str) {
        match self.vars.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            Some(v) => v.1 = value.to_string(),
            None => self.vars.push((name.to_string(), value.to_string())),
        }
    }

    /// Removes `name`; false when it was not defined.
    pub fn undefine(&mut self, name: &str) -> bool {
        let before = self.vars.len();
        self.vars.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.vars.len() != before
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Every variable, in definition order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// True when no variable is defined.
    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }
}

/// True for a valid variable name: a letter or underscore, then letters, digits or underscores.
pub fn is_variable_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Replaces every `${name}` of `text` by its value and every `$${` by `${`. A reference to a
/// variable that is not defined is an error naming it.
pub fn substitute(text: &str, vars: &Variables) -> Result<String> {
    if !text.contains("${") {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        if rest[..i].ends_with('$') {
            // `$${`: an escaped reference, kept as `${`.
            out.push_str(&rest[..i - 1]);
            out.push_str("${");
            rest = &rest[i + 2..];
            continue;
        }
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else {
            return Err(PlanError::Parse(format!("unterminated variable reference \"{}\": expected '}}'", &rest[i..])));
        };
        let name = after[..end].trim();
        if !is_variable_name(name) {
            return Err(PlanError::Parse(format!("invalid variable name \"{name}\" in \"${{{}}}\"", &after[..end])));
        }
        match vars.get(name) {
            Some(v) => out.push_str(v),
            None => return Err(PlanError::UnknownObject { kind: "variable", name: name.to_string() }),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Variables {
        let mut v = Variables::default();
        v.define("format", "AVRO");
        v.define("replicas", "3");
        v
    }

    #[test]
    fn substitutes_case_insensitively_in_literals_and_identifiers() {
        let s = substitute("CREATE STREAM ${FORMAT}_s WITH (value_format='${format}', replicas=${Replicas})", &vars()).unwrap();
        assert_eq!(s, "CREATE STREAM AVRO_s WITH (value_format='AVRO', replicas=3)");
    }

    #[test]
    fn double_dollar_escapes() {
        assert_eq!(substitute("SELECT '$${format}' FROM s", &vars()).unwrap(), "SELECT '${format}' FROM s");
        assert_eq!(substitute("SELECT '$${format}${format}'", &vars()).unwrap(), "SELECT '${format}AVRO'");
    }

    #[test]
    fn unknown_and_malformed_references_are_errors() {
        assert_eq!(substitute("SELECT ${nope}", &vars()).unwrap_err().to_string(), "unknown variable \"nope\"");
        assert!(substitute("SELECT ${format", &vars()).is_err());
        assert!(substitute("SELECT ${1x}", &vars()).is_err());
    }

    #[test]
    fn redefine_keeps_order_and_undefine_removes() {
        let mut v = vars();
        v.define("FORMAT", "JSON");
        assert_eq!(v.iter().collect::<Vec<_>>(), vec![("format", "JSON"), ("replicas", "3")]);
        assert!(v.undefine("REPLICAS"));
        assert!(!v.undefine("replicas"));
    }
}
