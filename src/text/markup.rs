//! Markup: text placed in XML or HTML we write ourselves (the XML-RPC codec keeps its own
//! writer, which must reproduce Moodle's bytes for every charset).

/// For an XML document or attribute: the five predefined entities (E11). The `<USE_STATS>`
/// message uses it, as the plugin's answers are read by XML parsers.
pub fn xml(text: &str) -> String {
    escape(text, "&apos;")
}

/// For an HTML page or Moodle's REST XML, as PHP's `htmlspecialchars(ENT_QUOTES)` writes it.
pub fn html(text: &str) -> String {
    escape(text, "&#039;")
}

fn escape(text: &str, apostrophe: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str(apostrophe),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn entities() {
        assert_eq!(
            xml("<a href='x'>&\"</a>"),
            "&lt;a href=&apos;x&apos;&gt;&amp;&quot;&lt;/a&gt;"
        );
        assert_eq!(html("'<>"), "&#039;&lt;&gt;");
    }

    proptest! {
        /// Whatever the text, the output holds no markup character except in an entity.
        #[test]
        fn no_markup_survives(text in "\\PC{0,60}") {
            for out in [xml(&text), html(&text)] {
                prop_assert!(!out.contains(['<', '>', '"', '\'']));
                let without_entities = out
                    .replace("&amp;", "").replace("&lt;", "").replace("&gt;", "")
                    .replace("&quot;", "").replace("&apos;", "").replace("&#039;", "");
                prop_assert!(!without_entities.contains('&'));
            }
        }
    }
}
