//! What the demo log is made of: Moodle's event classes as they appear in
//! `logstore_standard_log` (one static template per event) and the activity modules the demo
//! site installs, each with its view event.

pub(super) struct Tpl {
    pub(super) eventname: &'static str,
    pub(super) component: &'static str,
    pub(super) action: &'static str,
    pub(super) target: &'static str,
    pub(super) objecttable: Option<&'static str>,
    pub(super) crud: &'static str,
    pub(super) edulevel: i64,
}

macro_rules! tpl {
    ($name:ident, $ev:expr, $comp:expr, $action:expr, $target:expr, $table:expr, $crud:expr, $edu:expr) => {
        pub(super) static $name: Tpl = Tpl {
            eventname: $ev,
            component: $comp,
            action: $action,
            target: $target,
            objecttable: $table,
            crud: $crud,
            edulevel: $edu,
        };
    };
}

tpl!(
    LOGIN,
    "\\core\\event\\user_loggedin",
    "core",
    "loggedin",
    "user",
    Some("user"),
    "r",
    0
);
tpl!(
    LOGOUT,
    "\\core\\event\\user_loggedout",
    "core",
    "loggedout",
    "user",
    Some("user"),
    "r",
    0
);
tpl!(
    LOGIN_FAILED,
    "\\core\\event\\user_login_failed",
    "core",
    "failed",
    "user_login",
    None,
    "r",
    0
);
tpl!(
    DASHBOARD,
    "\\core\\event\\dashboard_viewed",
    "core",
    "viewed",
    "dashboard",
    None,
    "r",
    0
);
tpl!(
    COURSE_VIEW,
    "\\core\\event\\course_viewed",
    "core",
    "viewed",
    "course",
    None,
    "r",
    2
);
tpl!(
    GRADE_REPORT,
    "\\gradereport_user\\event\\grade_report_viewed",
    "gradereport_user",
    "viewed",
    "grade_report",
    None,
    "r",
    2
);
tpl!(
    USER_GRADED,
    "\\core\\event\\user_graded",
    "core",
    "graded",
    "user",
    Some("grade_grades"),
    "u",
    2
);
tpl!(
    COMPLETION_UPDATED,
    "\\core\\event\\course_module_completion_updated",
    "core",
    "updated",
    "course_module_completion",
    Some("course_modules_completion"),
    "u",
    0
);
tpl!(
    CONFIG_LOG,
    "\\core\\event\\config_log_created",
    "core",
    "created",
    "config_log",
    Some("config_log"),
    "c",
    0
);
tpl!(
    USER_UPDATED,
    "\\core\\event\\user_updated",
    "core",
    "updated",
    "user",
    Some("user"),
    "u",
    0
);
tpl!(
    COURSE_UPDATED,
    "\\core\\event\\course_updated",
    "core",
    "updated",
    "course",
    Some("course"),
    "u",
    1
);
tpl!(
    CM_UPDATED,
    "\\core\\event\\course_module_updated",
    "core",
    "updated",
    "course_module",
    Some("course_modules"),
    "u",
    1
);
tpl!(
    PAGE_VIEW,
    "\\mod_page\\event\\course_module_viewed",
    "mod_page",
    "viewed",
    "course_module",
    Some("page"),
    "r",
    2
);
tpl!(
    RESOURCE_VIEW,
    "\\mod_resource\\event\\course_module_viewed",
    "mod_resource",
    "viewed",
    "course_module",
    Some("resource"),
    "r",
    2
);
tpl!(
    URL_VIEW,
    "\\mod_url\\event\\course_module_viewed",
    "mod_url",
    "viewed",
    "course_module",
    Some("url"),
    "r",
    2
);
tpl!(
    LTC_VIEW,
    "\\mod_learningtimecheck\\event\\course_module_viewed",
    "mod_learningtimecheck",
    "viewed",
    "course_module",
    Some("learningtimecheck"),
    "r",
    2
);
tpl!(
    FORUM_VIEW,
    "\\mod_forum\\event\\course_module_viewed",
    "mod_forum",
    "viewed",
    "course_module",
    Some("forum"),
    "r",
    2
);
tpl!(
    FORUM_DISCUSSION,
    "\\mod_forum\\event\\discussion_viewed",
    "mod_forum",
    "viewed",
    "discussion",
    Some("forum_discussions"),
    "r",
    2
);
tpl!(
    FORUM_POST,
    "\\mod_forum\\event\\post_created",
    "mod_forum",
    "created",
    "post",
    Some("forum_posts"),
    "c",
    2
);
tpl!(
    QUIZ_VIEW,
    "\\mod_quiz\\event\\course_module_viewed",
    "mod_quiz",
    "viewed",
    "course_module",
    Some("quiz"),
    "r",
    2
);
tpl!(
    QUIZ_STARTED,
    "\\mod_quiz\\event\\attempt_started",
    "mod_quiz",
    "started",
    "attempt",
    Some("quiz_attempts"),
    "c",
    2
);
tpl!(
    QUIZ_ATTEMPT_VIEW,
    "\\mod_quiz\\event\\attempt_viewed",
    "mod_quiz",
    "viewed",
    "attempt",
    Some("quiz_attempts"),
    "r",
    2
);
tpl!(
    QUIZ_SUBMITTED,
    "\\mod_quiz\\event\\attempt_submitted",
    "mod_quiz",
    "submitted",
    "attempt",
    Some("quiz_attempts"),
    "u",
    2
);
tpl!(
    ASSIGN_VIEW,
    "\\mod_assign\\event\\course_module_viewed",
    "mod_assign",
    "viewed",
    "course_module",
    Some("assign"),
    "r",
    2
);
tpl!(
    ASSIGN_STATUS,
    "\\mod_assign\\event\\submission_status_viewed",
    "mod_assign",
    "viewed",
    "submission_status",
    Some("assign"),
    "r",
    2
);
tpl!(
    ASSIGN_SUBMITTED,
    "\\mod_assign\\event\\assessable_submitted",
    "mod_assign",
    "submitted",
    "assessable",
    Some("assign_submission"),
    "u",
    2
);
tpl!(
    ASSIGN_GRADING_TABLE,
    "\\mod_assign\\event\\grading_table_viewed",
    "mod_assign",
    "viewed",
    "grading_table",
    None,
    "r",
    1
);
tpl!(
    ASSIGN_GRADED,
    "\\mod_assign\\event\\submission_graded",
    "mod_assign",
    "graded",
    "submission",
    Some("assign_grades"),
    "u",
    2
);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mod {
    Assign,
    Forum,
    LearningTimeCheck,
    Page,
    Quiz,
    Resource,
    Url,
}

pub(super) const MODS: [Mod; 7] = [
    Mod::Assign,
    Mod::Forum,
    Mod::LearningTimeCheck,
    Mod::Page,
    Mod::Quiz,
    Mod::Resource,
    Mod::Url,
];

/// Installed module types without instances, as a real site has them.
pub(super) const OTHER_MODULES: &[&str] = &["book", "label", "scorm", "h5pactivity"];

impl Mod {
    pub(super) fn name(self) -> &'static str {
        match self {
            Mod::Assign => "assign",
            Mod::Forum => "forum",
            Mod::LearningTimeCheck => "learningtimecheck",
            Mod::Page => "page",
            Mod::Quiz => "quiz",
            Mod::Resource => "resource",
            Mod::Url => "url",
        }
    }

    /// `modules.id`: alphabetical install order.
    pub(super) fn module_id(self) -> i64 {
        MODS.iter().position(|&m| m == self).unwrap_or(0) as i64 + 1
    }

    pub(super) fn view(self) -> &'static Tpl {
        match self {
            Mod::Assign => &ASSIGN_VIEW,
            Mod::Forum => &FORUM_VIEW,
            Mod::LearningTimeCheck => &LTC_VIEW,
            Mod::Page => &PAGE_VIEW,
            Mod::Quiz => &QUIZ_VIEW,
            Mod::Resource => &RESOURCE_VIEW,
            Mod::Url => &URL_VIEW,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_safe_literals() {
        let all: [&Tpl; 28] = [
            &LOGIN,
            &LOGOUT,
            &LOGIN_FAILED,
            &DASHBOARD,
            &COURSE_VIEW,
            &GRADE_REPORT,
            &USER_GRADED,
            &COMPLETION_UPDATED,
            &CONFIG_LOG,
            &USER_UPDATED,
            &COURSE_UPDATED,
            &CM_UPDATED,
            &PAGE_VIEW,
            &RESOURCE_VIEW,
            &URL_VIEW,
            &LTC_VIEW,
            &FORUM_VIEW,
            &FORUM_DISCUSSION,
            &FORUM_POST,
            &QUIZ_VIEW,
            &QUIZ_STARTED,
            &QUIZ_ATTEMPT_VIEW,
            &QUIZ_SUBMITTED,
            &ASSIGN_VIEW,
            &ASSIGN_STATUS,
            &ASSIGN_SUBMITTED,
            &ASSIGN_GRADING_TABLE,
            &ASSIGN_GRADED,
        ];
        for t in all {
            for s in [t.eventname, t.component, t.action, t.target, t.crud]
                .into_iter()
                .chain(t.objecttable)
            {
                assert!(!s.contains('\''), "{s}");
            }
        }
    }
}
