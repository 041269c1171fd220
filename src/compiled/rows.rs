//! A segment's rows, kept so that an answer can cut the segment at any instant (a window's
//! edge) without going back to Moodle's log (docs/engine.md §7.1).
//!
//! Only what the engine looks at is kept, and only for rows it extracted: the key, what the
//! action means to it (login, logout, a graded echo, anything else), the context level's class,
//! the course and the course module. Times and ids are deltas from the previous row, courses and
//! modules indexes into a list per segment, so a row takes about five bytes. A module's name
//! and section come back from the user's compiled summary, which the answer checks against the
//! activity as it is now before using any compiled row.
//!
//! Layout (all integers LEB128 varints, signed ones zigzagged):
//! `count`, `courses` (count, then each course id, signed), `modules` (count, then each cmid),
//! then per row: time delta (signed), id delta (signed), flags, course index, and, for a row of
//! a module context with a known course module, its module index.

use super::varint::{Reader, put, put_signed};
use std::collections::BTreeMap;

use crate::stats::{
    CONTEXT_COURSE, CONTEXT_MODULE, CONTEXT_SYSTEM, CONTEXT_USER, Key, LogRow, LogText, ModuleInfo,
};
use crate::store::source::ModuleState;

/// What an action means to the engine (§2.3–2.5); every other action is the same to it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
enum Action {
    Other = 0,
    Login = 1,
    LoggedIn = 2,
    Logout = 3,
    LoggedOut = 4,
    /// `graded` on target `user`: the echo the engine skips after another row (§2.4).
    GradedUser = 5,
}

impl Action {
    fn of(row: &LogRow) -> Action {
        match row.action.as_str() {
            "login" => Action::Login,
            "loggedin" => Action::LoggedIn,
            "logout" => Action::Logout,
            "loggedout" => Action::LoggedOut,
            "graded" if row.target == "user" => Action::GradedUser,
            _ => Action::Other,
        }
    }

    fn from_bits(bits: u8) -> Option<Action> {
        Some(match bits {
            0 => Action::Other,
            1 => Action::Login,
            2 => Action::LoggedIn,
            3 => Action::Logout,
            4 => Action::LoggedOut,
            5 => Action::GradedUser,
            _ => return None,
        })
    }

    /// The action and target a rebuilt row carries: the same meaning to the engine.
    fn words(self) -> (&'static str, &'static str) {
        match self {
            // Anything but `failed` (not extracted) and the words above.
            Action::Other => ("viewed", ""),
            Action::Login => ("login", ""),
            Action::LoggedIn => ("loggedin", "user"),
            Action::Logout => ("logout", ""),
            Action::LoggedOut => ("loggedout", "user"),
            Action::GradedUser => ("graded", "user"),
        }
    }
}

/// The context level as the engine classifies it (§2.3): system, user, module, or anything
/// else, which counts as course time.
fn level_class(level: i64) -> u8 {
    match level {
        CONTEXT_SYSTEM => 0,
        CONTEXT_USER => 1,
        CONTEXT_MODULE => 2,
        _ => 3,
    }
}

fn class_level(class: u8) -> i64 {
    match class {
        0 => CONTEXT_SYSTEM,
        1 => CONTEXT_USER,
        2 => CONTEXT_MODULE,
        _ => CONTEXT_COURSE,
    }
}

/// The cmid a row's time goes to, when it goes to an activity (§2.3): 0 stands for a module
/// context whose course module cannot be known, which the engine treats as a gone context.
fn cmid_of(row: &LogRow) -> i64 {
    match &row.module {
        ModuleInfo::Cm { cmid, .. } => *cmid,
        ModuleInfo::NotModule | ModuleInfo::ContextGone => 0,
    }
}

/// Encodes extracted rows, in (time, id) order, of one user. `base` is the key the deltas start
/// from (the segment's first row).
pub fn encode(rows: &[LogRow], base: Key) -> Vec<u8> {
    let mut courses: BTreeMap<i64, usize> = BTreeMap::new();
    let mut modules: BTreeMap<i64, usize> = BTreeMap::new();
    for row in rows {
        let next = courses.len();
        courses.entry(row.course.unwrap_or(0)).or_insert(next);
        let cmid = cmid_of(row);
        if row.context_level == CONTEXT_MODULE && cmid != 0 {
            let next = modules.len();
            modules.entry(cmid).or_insert(next);
        }
    }
    let mut out = Vec::with_capacity(8 + rows.len() * 6);
    put(&mut out, rows.len() as u64);
    for list in [&courses, &modules] {
        let mut ordered: Vec<(usize, i64)> = list.iter().map(|(v, i)| (*i, *v)).collect();
        ordered.sort_unstable();
        put(&mut out, ordered.len() as u64);
        for (_, value) in ordered {
            put_signed(&mut out, value);
        }
    }
    let (mut time, mut id) = base;
    for row in rows {
        put_signed(&mut out, row.time.wrapping_sub(time));
        put_signed(&mut out, row.id.wrapping_sub(id));
        time = row.time;
        id = row.id;
        let cmid = cmid_of(row);
        let module = if row.context_level == CONTEXT_MODULE && cmid != 0 {
            modules.get(&cmid).copied()
        } else {
            None
        };
        let flags = Action::of(row) as u8
            | level_class(row.context_level) << 3
            | u8::from(module.is_some()) << 5;
        out.push(flags);
        put(
            &mut out,
            courses.get(&row.course.unwrap_or(0)).copied().unwrap_or(0) as u64,
        );
        if let Some(index) = module {
            put(&mut out, index as u64);
        }
    }
    out
}

/// Rebuilds the rows of [`encode`] for `userid`, each with what the engine needs to treat it as
/// the original: the module name and section come from `modules` (the user's compiled
/// summary). `None` when the bytes are not an encoding or name a module the summary does not
/// know: the caller then does not use them.
pub fn decode(
    bytes: &[u8],
    base: Key,
    userid: i64,
    modules: &BTreeMap<i64, ModuleState>,
) -> Option<Vec<LogRow>> {
    let mut r = Reader::new(bytes);
    let count = r.get_usize()?;
    let mut lists: [Vec<i64>; 2] = [Vec::new(), Vec::new()];
    for list in &mut lists {
        let n = r.get_usize()?;
        // Each entry takes at least a byte: a length past what is left is not an encoding.
        if n > r.rest() {
            return None;
        }
        for _ in 0..n {
            list.push(r.get_signed()?);
        }
    }
    let [courses, cmids] = lists;
    if count > r.rest() {
        return None;
    }
    let mut rows = Vec::with_capacity(count);
    let (mut time, mut id) = base;
    for _ in 0..count {
        time = time.wrapping_add(r.get_signed()?);
        id = id.wrapping_add(r.get_signed()?);
        let flags = r.byte()?;
        let action = Action::from_bits(flags & 0x7)?;
        let level = class_level((flags >> 3) & 0x3);
        let course = *courses.get(r.get_usize()?)?;
        let module = if flags & 0x20 != 0 {
            let cmid = *cmids.get(r.get_usize()?)?;
            let (module, section) = modules.get(&cmid)?.clone();
            ModuleInfo::Cm {
                cmid,
                module,
                section,
            }
        } else if level == CONTEXT_MODULE {
            ModuleInfo::ContextGone
        } else {
            ModuleInfo::NotModule
        };
        let (action, target) = action.words();
        rows.push(LogRow {
            id,
            userid,
            time,
            course: Some(course),
            context_level: level,
            action: LogText::const_new(action),
            target: LogText::const_new(target),
            origin: None,
            realuserid: None,
            module,
        });
    }
    (r.rest() == 0).then_some(rows)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use proptest::prelude::*;

    use super::*;
    use crate::stats::{Engine, Settings, Window};

    fn row() -> impl Strategy<Value = LogRow> {
        let action = prop::sample::select(vec![
            "viewed",
            "login",
            "loggedin",
            "logout",
            "loggedout",
            "graded",
            "submitted",
        ]);
        let target = prop::sample::select(vec!["user", "course", ""]);
        let level = prop::sample::select(vec![10i64, 30, 40, 50, 70, 70, 80]);
        let module = prop_oneof![
            Just(ModuleInfo::NotModule),
            Just(ModuleInfo::ContextGone),
            (0i64..6).prop_map(|cmid| ModuleInfo::Cm {
                cmid,
                module: None,
                section: None,
            }),
        ];
        (
            0i64..400,
            1i64..50,
            prop::option::of(0i64..6),
            level,
            action,
            target,
            module,
        )
            .prop_map(|(dt, did, course, level, action, target, module)| LogRow {
                id: did,
                userid: 9,
                time: dt,
                course,
                context_level: level,
                action: action.into(),
                target: target.into(),
                origin: None,
                realuserid: None,
                module,
            })
    }

    /// Rows in (time, id) order, as a segment holds them, and the module states a summary
    /// would know for them.
    fn segment() -> impl Strategy<Value = (Vec<LogRow>, BTreeMap<i64, ModuleState>)> {
        prop::collection::vec(row(), 0..60).prop_map(|raw| {
            let (mut time, mut id) = (1_700_000_000i64, 1_000i64);
            let mut modules = BTreeMap::new();
            let rows: Vec<LogRow> = raw
                .into_iter()
                .map(|mut r| {
                    time += r.time;
                    id += r.id;
                    r.time = time;
                    r.id = id;
                    if let ModuleInfo::Cm { cmid, .. } = &mut r.module {
                        let name = ["page", "quiz", "forum"][(*cmid % 3) as usize];
                        let state = (Some(LogText::from(name)), Some(*cmid * 10));
                        modules.insert(*cmid, state.clone());
                        r.module = ModuleInfo::Cm {
                            cmid: *cmid,
                            module: state.0,
                            section: state.1,
                        };
                    }
                    r
                })
                .collect();
            (rows, modules)
        })
    }

    fn report(rows: &[LogRow], window: Window) -> crate::stats::Report {
        let mut engine =
            Engine::new(&Settings::default(), window, HashMap::new()).keep_sessions(true);
        for r in rows {
            let _ = engine.push(r);
        }
        engine.finish()
    }

    proptest! {
        /// The engine cannot tell the kept rows from the originals: same report for any
        /// window, the rows it would not extract included.
        #[test]
        fn kept_rows_give_the_same_answers(
            (rows, modules) in segment(),
            from in 1_699_999_000i64..1_700_020_000,
            len in 0i64..30_000,
        ) {
            let extracted: Vec<LogRow> = {
                let engine = Engine::new(&Settings::default(), Window { from: i64::MIN, to: i64::MAX, now: i64::MAX }, HashMap::new());
                rows.iter().filter(|r| engine.extracts(r)).cloned().collect()
            };
            let base = extracted.first().map_or((0, 0), |r| (r.time, r.id));
            let bytes = encode(&extracted, base);
            let back = decode(&bytes, base, 9, &modules).expect("decodes");
            prop_assert_eq!(back.len(), extracted.len());
            for (a, b) in back.iter().zip(&extracted) {
                prop_assert_eq!((a.time, a.id, a.course), (b.time, b.id, b.course));
            }
            let window = Window { from, to: from + len, now: from + len + 600 };
            prop_assert_eq!(report(&back, window), report(&rows, window));
        }

        /// Any bytes: a decode that fails, never a panic.
        #[test]
        fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes, (0, 0), 1, &BTreeMap::new());
        }
    }
}
