//! Where a login leads back to: the console page asked for without a session (a deep link).
//! Only a path of this console is ever followed, so the login cannot be made to send anyone
//! elsewhere (`//evil.example`, `https://evil.example`, `/console/../x`, `\\evil`…).

/// The longest return path kept; a longer one is dropped (the login leads to the overview).
const MAX_LEN: usize = 2048;

/// `next` when it is a page of this console to come back to after login; `None` otherwise.
pub fn local(next: &str) -> Option<&str> {
    let path = next.split(['?', '#']).next().unwrap_or("");
    let acceptable = next.len() <= MAX_LEN
        && next.starts_with("/console/")
        && !path.contains("//")
        && !path.contains("..")
        && !path.starts_with("/console/login")
        && !path.starts_with("/console/logout")
        && !next
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\');
    acceptable.then_some(next)
}

/// The login page's address for someone who asked for `asked` without a session.
pub fn login_location(asked: &str) -> String {
    match local(asked) {
        Some(next) if next != "/console/" => {
            let query = form_urlencoded::Serializer::new(String::new())
                .append_pair("next", next)
                .finish();
            format!("/console/login?{query}")
        }
        _ => "/console/login".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_console_pages_are_followed() {
        for good in [
            "/console/learner?user=ann&from=2026-01-01",
            "/console/peers",
            "/console/course?course=id%3A3",
        ] {
            assert_eq!(local(good), Some(good), "{good}");
        }
        for bad in [
            "//evil.example",
            "https://evil.example",
            "http://evil.example/console/",
            "/console//evil.example",
            "/console/../evil",
            "/\\evil.example",
            "/console/\\evil",
            "/console/login",
            "/console/logout",
            "console/peers",
            "/console/peers\r\nSet-Cookie: x=y",
            "",
        ] {
            assert_eq!(local(bad), None, "{bad:?}");
        }
        assert_eq!(local(&format!("/console/{}", "a".repeat(3000))), None);
    }

    #[test]
    fn the_login_address_carries_the_path_encoded() {
        assert_eq!(
            login_location("/console/learner?user=a b&to=1"),
            "/console/login"
        );
        assert_eq!(
            login_location("/console/learner?user=ann&to=1"),
            "/console/login?next=%2Fconsole%2Flearner%3Fuser%3Dann%26to%3D1"
        );
        assert_eq!(login_location("/console/"), "/console/login");
        assert_eq!(login_location("//evil.example"), "/console/login");
    }
}
