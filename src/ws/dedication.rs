//! The web services' answer under a dedication estimator (docs/engine.md §8), in the shape of
//! use_stats' answer so that a caller reads both the same way; with `sessionlist=1` each course
//! row also lists its sessions.

use serde_json::{Map, Value as Json, json};

use super::GET_USERS_COURSE_STATS;
use super::handlers::{grade, session_json};
use crate::reports::UsersAnswer;
use crate::stats::dedication::{CourseDedication, Dedication, DedicationEstimator, kept_across};
use crate::store::source::User;

/// What the call asked to see besides the numbers.
#[derive(Debug, Clone, Copy)]
pub(super) struct Shown {
    pub from: i64,
    pub score: bool,
    pub session_list: bool,
}

/// A course row of a dedication answer: the fields of use_stats' row, the course's dedication
/// total as `coursetime` and `coursetotal` (the rule does not tell activities apart:
/// `activitytime` and `othertime` are 0), its sessions kept and dropped.
fn dedication_course_json(
    course_id: i64,
    user: &User,
    computed: &UsersAnswer,
    answer: Option<&Dedication>,
    shown: Shown,
) -> Map<String, Json> {
    let found = answer.and_then(|a| a.course(course_id));
    let total = found.map(|c| c.total).unwrap_or(0);
    let record = computed
        .courses
        .get(&course_id)
        .or(computed.course.as_ref().filter(|c| c.id == course_id));
    let sitecoursetime = answer
        .and_then(|a| a.course(computed.site_course))
        .map(|c| c.total)
        .unwrap_or(0);
    let mut row = Map::new();
    row.insert("id".into(), json!(course_id));
    for (key, value) in [
        ("idnumber", record.map(|c| c.idnumber.clone())),
        ("shortname", record.map(|c| c.shortname.clone())),
        ("fullname", record.map(|c| c.fullname.clone())),
    ] {
        row.insert(key.into(), json!(value.unwrap_or_default()));
    }
    row.insert("activitytime".into(), json!(0));
    row.insert("coursetime".into(), json!(total));
    row.insert("coursetotal".into(), json!(total));
    row.insert("othertime".into(), json!(0));
    row.insert("sitecoursetime".into(), json!(sitecoursetime));
    row.insert(
        "keptsessions".into(),
        json!(found.map(|c| c.kept).unwrap_or(0)),
    );
    row.insert(
        "droppedsessions".into(),
        json!(found.map(|c| c.dropped).unwrap_or(0)),
    );
    // dedication.legacy: what its per-user report shows (sessions over 59 s) and its
    // connection ratio (docs/engine.md §8.3).
    if let Some(legacy) = found.and_then(|c| c.legacy) {
        row.insert("userreporttotal".into(), json!(legacy.user_report_total));
        row.insert("dayswithrows".into(), json!(legacy.days_with_rows));
        row.insert("daysinperiod".into(), json!(legacy.days_in_period));
    }
    if shown.score {
        row.insert("score".into(), json!(grade(computed, user.id, course_id)));
    }
    if shown.session_list {
        row.insert("sessionlist".into(), session_list(found));
    }
    row
}

/// Every session of a course row in time order: when, how long, and whether it counts (and if
/// not, why).
fn session_list(course: Option<&CourseDedication>) -> Json {
    let sessions = course.map(|c| c.sessions.as_slice()).unwrap_or_default();
    Json::Array(
        sessions
            .iter()
            .map(|s| {
                json!({
                    "start": s.start,
                    "end": s.end,
                    "duration": s.duration,
                    "rows": s.rows,
                    "kept": s.dropped.is_none(),
                    "dropped": s.dropped.map(|d| d.as_str()),
                })
            })
            .collect(),
    )
}

/// Session figures over the kept sessions of `courses` (courses may overlap in time, each
/// session is counted in its own course); `{}` when none of them has a counted row (E9).
fn dedication_sessions_json<'a>(courses: impl Iterator<Item = &'a CourseDedication>) -> Json {
    let courses: Vec<&CourseDedication> = courses.collect();
    if courses.iter().all(|c| c.rows == 0) {
        return Json::Object(Map::new());
    }
    let stats = kept_across(courses.iter().map(|c| &c.summary.kept));
    let mut object = match session_json(&stats, true) {
        Json::Object(o) => o,
        _ => Map::new(),
    };
    let dropped: u64 = courses.iter().map(|c| c.dropped).sum();
    object.insert("droppedsessions".into(), json!(dropped));
    Json::Object(object)
}

/// One user's answer under a dedication estimator, in the shape of use_stats' answer.
pub(super) fn dedication_answer(
    function: &str,
    user: &User,
    computed: &UsersAnswer,
    shown: Shown,
    estimator: &DedicationEstimator,
    answer: Option<&Dedication>,
) -> Json {
    let user_json = json!({"id": user.id, "idnumber": user.idnumber, "username": user.username});
    let query = json!({
        "from": shown.from,
        "to": computed.window.to,
        "estimator": estimator.to_string(),
    });
    let courses_of_answer = || answer.into_iter().flat_map(|a| a.courses.iter());
    if function == GET_USERS_COURSE_STATS {
        let course_id = computed.course.as_ref().map(|c| c.id).unwrap_or(0);
        let mut data = dedication_course_json(
            course_id,
            user,
            computed,
            answer,
            Shown {
                score: false,
                ..shown
            },
        );
        let kept = kept_across(
            courses_of_answer()
                .filter(|c| c.course == course_id)
                .map(|c| &c.summary.kept),
        );
        if let (Some(first), Some(last)) = (kept.first_start, kept.last_start) {
            data.insert("firstsession".into(), json!(first));
            data.insert("lastsession".into(), json!(last));
        }
        if shown.score {
            data.insert("score".into(), json!(grade(computed, user.id, course_id)));
        }
        return json!({"user": user_json, "query": query, "coursedata": Json::Object(data)});
    }
    let (sessions, courses): (Json, Vec<Json>) = match &computed.course {
        Some(course) => (
            dedication_sessions_json(courses_of_answer().filter(|c| c.course == course.id)),
            vec![Json::Object(dedication_course_json(
                course.id, user, computed, answer, shown,
            ))],
        ),
        None => (
            dedication_sessions_json(courses_of_answer()),
            courses_of_answer()
                .filter(|c| c.course != 0 && c.course != computed.site_course)
                .map(|c| {
                    Json::Object(dedication_course_json(
                        c.course, user, computed, answer, shown,
                    ))
                })
                .collect(),
        ),
    };
    json!({"user": user_json, "query": query, "sessions": sessions, "courses": courses})
}
