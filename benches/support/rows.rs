//! The synthetic log both engine benches feed the engine.

use usestats::stats::{LogRow, ModuleInfo};

pub const T0: i64 = 1_600_000_000;

/// A deterministic mix resembling a busy learner: mostly module and course views in a handful
/// of courses, regular logins and logouts, graded echoes, captured rows and long breaks.
pub fn synthetic_rows(count: usize) -> Vec<LogRow> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut time = T0;
    (0..count)
        .map(|index| {
            let draw = next();
            time += match draw % 100 {
                0 => 7_200,
                1..=10 => 0,
                _ => (draw >> 8) as i64 % 300,
            };
            let course = 2 + (draw >> 20) as i64 % 8;
            let (course, level, action, target, module) = match (draw >> 32) % 50 {
                0 => (0, 10, "loggedin", "user", ModuleInfo::NotModule),
                1 => (0, 10, "loggedout", "user", ModuleInfo::NotModule),
                2 => (course, 50, "graded", "user", ModuleInfo::NotModule),
                3 => (
                    course,
                    70,
                    "viewed",
                    "course_module",
                    ModuleInfo::Cm {
                        cmid: 9_000 + course,
                        module: Some("learningtimecheck".into()),
                        section: Some(1),
                    },
                ),
                4..=19 => (course, 50, "viewed", "course", ModuleInfo::NotModule),
                _ => (
                    course,
                    70,
                    "viewed",
                    "course_module",
                    ModuleInfo::Cm {
                        cmid: course * 100 + (draw >> 40) as i64 % 25,
                        module: Some("quiz".into()),
                        section: Some(course * 10 + (draw >> 48) as i64 % 5),
                    },
                ),
            };
            LogRow {
                id: index as i64 + 1,
                userid: 42,
                time,
                course: Some(course),
                context_level: level,
                action: action.into(),
                target: target.into(),
                origin: Some("web".into()),
                realuserid: None,
                module,
            }
        })
        .collect()
}
