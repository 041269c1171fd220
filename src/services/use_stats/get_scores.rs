//! `use_stats_rpc_get_scores`: a user's course grade.

use super::Site;
use super::*;
use crate::mnet::services::CallContext;
use crate::store::source::CourseField;
use crate::text::markup;
use crate::xmlrpc::Value;

pub async fn get_scores(site: Site, ctx: CallContext, params: Vec<Value>) -> Value {
    let json_response = json_response_param(params.get(6));
    get_scores_answer(&site, &ctx, &params)
        .await
        .into_value(json_response)
}

pub(super) async fn get_scores_answer(site: &Site, ctx: &CallContext, params: &[Value]) -> Answer {
    let caller = match authenticate(site, ctx, params.first()).await {
        Ok(caller) => caller,
        Err(answer) => return answer,
    };
    let GetScoresParams {
        target,
        whereroot,
        scorescope,
        course_field: field,
        course_identifier: identifier,
    } = match GetScoresParams::parse(params) {
        Ok(p) => p,
        Err(answer) => return answer,
    };
    // Grades are course detail: the course grant is needed.
    if !caller.grant.course {
        return Answer::fail(
            RPC_FAILURE_CAPABILITY,
            "Local user's identity has no capability to run",
        );
    }
    if let Some(remote) = forward_target(site, &whereroot) {
        let params = vec![
            relay_caller(site, &caller),
            Value::String(target),
            Value::String(String::new()),
            Value::String(scorescope),
            Value::String(field),
            Value::String(identifier),
        ];
        return forward(site, &remote, GET_SCORES, params, false).await;
    }
    let course_field = match field.as_str() {
        "id" => CourseField::Id,
        "shortname" => CourseField::ShortName,
        "idnumber" => CourseField::IdNumber,
        _ => return Answer::fail(RPC_FAILURE_RECORD, "Unknown course."),
    };
    let source = match source(site) {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let found = site
        .source
        .run::<_, ReportError, _>(move |conn| {
            let Some(course) = source.find_course(conn, course_field, &identifier)? else {
                return Ok(Err(Answer::fail(RPC_FAILURE_RECORD, "Unknown course.")));
            };
            let Some(user) = source.find_user_for_rpc(conn, &target)? else {
                return Ok(Err(Answer::fail(
                    RPC_FAILURE_RECORD,
                    "Target user does not exist.",
                )));
            };
            let grade = source.course_grade(conn, user.id, course.id)?;
            Ok(Ok((user, grade)))
        })
        .await;
    let (user, grade) = match found {
        Err(e) => return data_unavailable(e),
        Ok(Err(answer)) => return answer,
        Ok(Ok(found)) => found,
    };
    if scorescope != "notes/global" {
        return Answer::ok("<USER_SCORES>\n<ERROR>Not implemented</ERROR>\n</USER_SCORES>".into());
    }
    Answer::ok(format!(
        "<USER_SCORES>\n<USER>\n\t<USERNAME>{}</USERNAME>\n\t<FIRSTNAME>{}</FIRSTNAME>\n\t<LASTNAME>{}</LASTNAME>\n\n</USER><SCORE>{}</SCORE>\n</USER_SCORES>",
        markup::xml(&user.username),
        markup::xml(&user.firstname),
        markup::xml(&user.lastname),
        markup::xml(grade.as_deref().unwrap_or("")),
    ))
}
