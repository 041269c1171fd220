//! Moodle's REST XML rendering: the response document and the escaping it uses.

use serde_json::Value as Json;

pub(super) use crate::text::markup::html as xml_escape;

/// Moodle's REST XML: SINGLE for objects, MULTIPLE for lists, VALUE for scalars.
pub fn to_moodle_xml(value: &Json) -> String {
    fn render(value: &Json, out: &mut String) {
        match value {
            Json::Object(map) => {
                out.push_str("<SINGLE>\n");
                for (key, item) in map {
                    out.push_str(&format!("<KEY name=\"{}\">", xml_escape(key)));
                    render(item, out);
                    out.push_str("</KEY>\n");
                }
                out.push_str("</SINGLE>\n");
            }
            Json::Array(items) => {
                out.push_str("<MULTIPLE>\n");
                for item in items {
                    render(item, out);
                }
                out.push_str("</MULTIPLE>\n");
            }
            Json::Null => out.push_str("<VALUE null=\"null\"/>\n"),
            Json::String(s) => out.push_str(&format!("<VALUE>{}</VALUE>\n", xml_escape(s))),
            Json::Bool(b) => out.push_str(&format!("<VALUE>{}</VALUE>\n", u8::from(*b))),
            Json::Number(n) => out.push_str(&format!("<VALUE>{n}</VALUE>\n")),
        }
    }
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<RESPONSE>\n");
    render(value, &mut out);
    out.push_str("</RESPONSE>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn moodle_xml_shapes() {
        let xml = to_moodle_xml(&json!({"a": [1, "x<"], "b": null}));
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<RESPONSE>\n<SINGLE>\n<KEY name=\"a\"><MULTIPLE>\n<VALUE>1</VALUE>\n<VALUE>x&lt;</VALUE>\n</MULTIPLE>\n</KEY>\n<KEY name=\"b\"><VALUE null=\"null\"/>\n</KEY>\n</SINGLE>\n</RESPONSE>\n"
        );
    }
}
