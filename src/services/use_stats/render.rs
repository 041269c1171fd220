//! The `<USE_STATS>` XML message of `get_stats`, as the plugin lays it out per scope.

use super::*;
use crate::stats::Report;
use crate::store::source::User;
// E11: values in the XML messages are escaped (`markup::xml`); consumers compare parsed
// values.
use crate::text::markup;

/// Courses under this many minutes are left out of the MNET course list, modules under
/// [`MODULE_MIN_MINUTES`] out of the module list (as the plugin does).
pub(super) const COURSE_MIN_MINUTES: i64 = 5;
pub(super) const MODULE_MIN_MINUTES: i64 = 2;

/// The `<USE_STATS>` message of §1.4.3, minutes floored, values escaped (E8, E11, E14).
pub fn stats_message(
    user: &User,
    report: &Report,
    scope: Scope,
    timefrom_text: &str,
    courses: &std::collections::HashMap<i64, crate::store::source::Course>,
    labels: &std::collections::HashMap<i64, crate::store::source::ModuleLabel>,
) -> String {
    let mut out = String::new();
    out.push_str("<USE_STATS>\n<USER>\n");
    out.push_str(&format!(
        "\t<USERNAME>{}</USERNAME>\n",
        markup::xml(&user.username)
    ));
    out.push_str(&format!(
        "\t<FIRSTNAME>{}</FIRSTNAME>\n",
        markup::xml(&user.firstname)
    ));
    out.push_str(&format!(
        "\t<LASTNAME>{}</LASTNAME>\n",
        markup::xml(&user.lastname)
    ));
    out.push_str(&format!("\t<FROM>{}</FROM>\n", markup::xml(timefrom_text)));
    out.push_str(&format!(
        "\t<ELAPSED>{}</ELAPSED>\n",
        report.total.div_euclid(60)
    ));
    out.push_str("\n</USER>");
    if scope.courses() {
        out.push_str("<COURSES>\n");
        for totals in &report.courses {
            let minutes = totals.coursetotal.div_euclid(60);
            if totals.course == 0 || minutes < COURSE_MIN_MINUTES {
                continue;
            }
            let course = courses.get(&totals.course);
            let field = |f: fn(&crate::store::source::Course) -> &str| {
                course.map(|c| markup::xml(f(c))).unwrap_or_default()
            };
            out.push_str("<COURSE>\n");
            out.push_str(&format!("\t<NAME>{}</NAME>\n", field(|c| &c.fullname)));
            out.push_str(&format!(
                "\t<SHORTNAME>{}</SHORTNAME>\n",
                field(|c| &c.shortname)
            ));
            out.push_str(&format!(
                "\t<IDNUMBER>{}</IDNUMBER>\n",
                field(|c| &c.idnumber)
            ));
            out.push_str(&format!("\t<ELAPSED>{minutes}</ELAPSED>\n"));
            if scope.modules() {
                out.push_str("<MODULES>\n");
                for module in &totals.modules {
                    let minutes = module.elapsed.div_euclid(60);
                    if minutes < MODULE_MIN_MINUTES {
                        continue;
                    }
                    let (name, kind, idnumber) = match (labels.get(&module.cmid), &module.module) {
                        (Some(label), Some(_)) => (
                            markup::xml(&label.name),
                            markup::xml(&label.modname),
                            markup::xml(&label.idnumber),
                        ),
                        _ => ("N.C.".to_string(), "N.C.".to_string(), String::new()),
                    };
                    out.push_str("<MODULE>\n");
                    out.push_str(&format!("\t<NAME>{name}</NAME>\n"));
                    out.push_str(&format!("\t<TYPE>{kind}</TYPE>\n"));
                    out.push_str(&format!("\t<IDNUMBER>{idnumber}</IDNUMBER>\n"));
                    out.push_str(&format!("\t<ELAPSED>{minutes}</ELAPSED>\n"));
                    out.push_str("\n</MODULE>\n");
                }
                out.push_str("\n</MODULES>\n");
            }
            out.push_str("\n</COURSE>\n");
        }
        out.push_str("\n</COURSES>\n");
    }
    out.push_str("\n</USE_STATS>");
    out
}
