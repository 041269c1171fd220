//! The documented example configuration must stay true to the code's defaults.

use std::path::Path;

use usestats::config::Config;

#[test]
fn the_example_config_parses_and_documents_the_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/usestats.toml");
    let example = Config::load(&path).expect("examples/usestats.toml is valid");
    let defaults = Config::for_wwwroot(&example.site.wwwroot);
    // Every section except [site] lists exactly the defaults.
    let strip = |c: &Config| {
        let mut value = toml::Value::try_from(c).unwrap();
        value.as_table_mut().unwrap().remove("site");
        value
    };
    assert_eq!(strip(&example), strip(&defaults));
}
