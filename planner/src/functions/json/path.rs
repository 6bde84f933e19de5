//! The JSONPath subset of ksqlDB's EXTRACTJSONFIELD: `$`, `.name`, `['name']`, `["name"]` and
//! `[index]` (0-based; a negative or missing index selects nothing).

use super::doc::Json;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// An object member.
    Key(String),
    /// An array element.
    Index(i64),
}

/// Parses a path such as `$.store.book[0]['title']`.
pub fn parse(p: &str) -> Result<Vec<Step>, String> {
    let chars: Vec<char> = p.trim().chars().collect();
    if chars.first() != Some(&'$') {
        return Err(format!("invalid JSON path '{p}': it must start with $"));
    }
    let mut steps = Vec::new();
    let mut i = 1;
    while i < chars.len() {
        match chars[i] {
            '.' => {
                let start = i + 1;
                i = start;
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    i += 1;
                }
                if i == start {
                    return Err(format!("invalid JSON path '{p}': empty name at {start}"));
                }
                steps.push(Step::Key(chars[start..i].iter().collect()));
            }
            '[' => {
                i += 1;
                match chars.get(i) {
                    Some(&q) if q == '\'' || q == '"' => {
                        let start = i + 1;
                        let end = (start..chars.len()).find(|&k| chars[k] == q).ok_or_else(|| format!("invalid JSON path '{p}': unclosed quote"))?;
                        steps.push(Step::Key(chars[start..end].iter().collect()));
                        i = end + 1;
                    }
                    _ => {
                        let start = i;
                        while i < chars.len() && chars[i] != ']' {
                            i += 1;
                        }
                        let text: String = chars[start..i].iter().collect();
                        let idx = text.trim().parse::<i64>().map_err(|_| format!("invalid JSON path '{p}': bad index {text}"))?;
                        steps.push(Step::Index(idx));
                    }
                }
                if chars.get(i) != Some(&']') {
                    return Err(format!("invalid JSON path '{p}': expected ]"));
                }
                i += 1;
            }
            c => return Err(format!("invalid JSON path '{p}': unexpected {c}")),
        }
    }
    Ok(steps)
}

/// The value `steps` lead to in `j`.
pub fn select<'a>(j: &'a Json, steps: &[Step]) -> Option<&'a Json> {
    let mut cur = j;
    for s in steps {
        cur = match (s, cur) {
            (Step::Key(k), Json::Obj(fields)) => &fields.iter().find(|(fk, _)| fk == k)?.1,
            (Step::Index(i), Json::Arr(items)) => items.get(usize::try_from(*i).ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

#[cfg(test)]
mod tests {
    use super::super::doc;
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(parse("$.a.@type[2]['x y'][\"z\"]").unwrap(), vec![
            Step::Key("a".into()),
            Step::Key("@type".into()),
            Step::Index(2),
            Step::Key("x y".into()),
            Step::Key("z".into())
        ]);
        assert!(parse("a.b").is_err());
        assert!(parse("$.a[").is_err());
        let j = doc::parse(r#"{"array": [1, 2, 3], "o": {"k": "v"}}"#).unwrap();
        assert_eq!(select(&j, &parse("$.array[0]").unwrap()).and_then(Json::as_text), Some("1".into()));
        assert_eq!(select(&j, &parse("$.array[-1]").unwrap()), None);
        assert_eq!(select(&j, &parse("$.o").unwrap()).and_then(Json::as_text), Some(r#"{"k":"v"}"#.into()));
        assert_eq!(select(&j, &parse("$").unwrap()).map(|v| v.to_text()), Some(j.to_text()));
    }
}
