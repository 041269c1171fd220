//! Form parameters as Moodle's REST server reads them: percent decoding as PHP's
//! `urldecode` does it, and PHP's array notation.

use std::collections::HashMap;

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            // PHP's urldecode takes exactly two hex digits; `from_str_radix` alone would also
            // take a sign, decoding `%+1` to a control byte (found by fuzz/ws_params).
            b'%' if i + 2 < bytes.len()
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit() =>
            {
                match u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                    16,
                ) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Form parameters with PHP's array notation kept apart: `uids[0]=a&uids[1]=b` gives the
/// list `uids = [a, b]` (ordered by index), `uids[]=a` appends.
#[derive(Debug, Default)]
pub struct Params {
    scalars: HashMap<String, String>,
    lists: HashMap<String, Vec<(Option<u64>, String)>>,
}

impl Params {
    pub fn parse(parts: &[&str]) -> Params {
        let mut params = Params::default();
        for part in parts {
            for pair in part.split('&').filter(|p| !p.is_empty()) {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                let key = percent_decode(key);
                let value = percent_decode(value);
                match key.split_once('[') {
                    Some((name, rest)) if rest.ends_with(']') => {
                        let index = rest[..rest.len() - 1].parse::<u64>().ok();
                        params
                            .lists
                            .entry(name.to_string())
                            .or_default()
                            .push((index, value));
                    }
                    _ => {
                        params.scalars.insert(key, value);
                    }
                }
            }
        }
        params
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.scalars.get(name).map(String::as_str)
    }

    pub fn list(&self, name: &str) -> Option<Vec<String>> {
        let mut items = self.lists.get(name)?.clone();
        items.sort_by_key(|(index, _)| index.unwrap_or(u64::MAX));
        Some(items.into_iter().map(|(_, v)| v).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn php_array_notation() {
        let p = Params::parse(&[
            "wstoken=abc&uids%5B1%5D=b+c",
            "uids[0]=a&uidsource=username&x=%C3%A9",
        ]);
        assert_eq!(p.get("wstoken"), Some("abc"));
        assert_eq!(
            p.list("uids"),
            Some(vec!["a".to_string(), "b c".to_string()])
        );
        assert_eq!(p.get("x"), Some("é"));
        assert_eq!(p.get("missing"), None);
        let bad = Params::parse(&["a=%zz&b=%4"]);
        assert_eq!(bad.get("a"), Some("%zz"));
        assert_eq!(bad.get("b"), Some("%4"));
    }
}
