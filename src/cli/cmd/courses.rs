//! `usestats courses [--search TEXT]`: the course index, paged.

use std::sync::Arc;

use anyhow::Context;
use serde_json::json;

use super::CmdResult;
use super::common::print_json;
use crate::app::App;
use crate::cli::output::Table;
use crate::cli::{CourseSort, CoursesArgs};
use crate::reports::CourseIndexAsk;
use crate::store::source::CourseOrder;

pub(super) async fn run(app: &Arc<App>, args: CoursesArgs, json_out: bool) -> CmdResult {
    let search = args.search.clone().unwrap_or_default();
    let order = match args.sort {
        CourseSort::Shortname => CourseOrder::ShortName,
        CourseSort::Fullname => CourseOrder::FullName,
        CourseSort::Learners => CourseOrder::Learners,
        CourseSort::Id => CourseOrder::Id,
    };
    let per_page = i64::from(args.per_page);
    let offset = (i64::from(args.page) - 1) * per_page;
    let page = app
        .reports
        .course_index(CourseIndexAsk {
            search,
            order,
            offset,
            per_page,
        })
        .await
        .context("reading the source database's courses")?;
    if json_out {
        print_json(&json!({
            "search": args.search,
            "total": page.total,
            "page": args.page,
            "per_page": args.per_page,
            "courses": page.courses.iter().map(|c| json!({
                "id": c.course.id,
                "shortname": c.course.shortname,
                "fullname": c.course.fullname,
                "idnumber": c.course.idnumber,
                "learners": c.learners,
            })).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    if page.courses.is_empty() {
        if page.total == 0 {
            println!("no course matches");
        } else {
            println!(
                "page {} is past the last one ({} courses)",
                args.page, page.total
            );
        }
        return Ok(());
    }
    let mut table = Table::new(&["ID", "SHORT NAME", "FULL NAME", "LEARNERS"]);
    for c in &page.courses {
        table.row(vec![
            c.course.id.to_string(),
            c.course.shortname.clone(),
            c.course.fullname.clone(),
            c.learners.to_string(),
        ]);
    }
    print!("{}", table.render());
    let first = offset + 1;
    let last = offset + page.courses.len() as i64;
    println!("courses {first}–{last} of {}", page.total);
    Ok(())
}
