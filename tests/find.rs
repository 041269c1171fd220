//! Finding people and courses (issue 24) on every source backend: the search's answers are
//! checked against the user and enrolment tables read whole and filtered here, by a rule
//! written from the documentation (docs/console.md, "Finding").

mod common;

use std::collections::BTreeSet;

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use usestats::store::DbConnection;
use usestats::store::source::{CourseOrder, Source};

#[derive(QueryableByName, Debug, Clone)]
struct Row {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    username: String,
    #[diesel(sql_type = Text)]
    firstname: String,
    #[diesel(sql_type = Text)]
    lastname: String,
    #[diesel(sql_type = Text)]
    email: String,
    #[diesel(sql_type = Text)]
    idnumber: String,
}

fn all_users(conn: &mut DbConnection) -> Vec<Row> {
    use diesel::RunQueryDsl;
    let sql = "SELECT id, username, firstname, lastname, COALESCE(email, '') AS email, \
               COALESCE(idnumber, '') AS idnumber FROM mdl_user WHERE deleted = 0";
    match conn {
        DbConnection::Sqlite(c) => diesel::sql_query(sql).load(c).unwrap(),
        DbConnection::Postgres(c) => diesel::sql_query(sql).load(c).unwrap(),
        DbConnection::Mysql(c) => diesel::sql_query(sql).load(c).unwrap(),
    }
}

fn exec(conn: &mut DbConnection, sql: &str) {
    use diesel::RunQueryDsl;
    match conn {
        DbConnection::Sqlite(c) => diesel::sql_query(sql).execute(c).unwrap(),
        DbConnection::Postgres(c) => diesel::sql_query(sql).execute(c).unwrap(),
        DbConnection::Mysql(c) => diesel::sql_query(sql).execute(c).unwrap(),
    };
}

/// The documented rule: exact on id, username, email or idnumber; when nobody matches
/// exactly, the full name ("first last") contains the text, ignoring (ASCII) case.
fn expected(users: &[Row], text: &str) -> BTreeSet<i64> {
    let exact: BTreeSet<i64> = users
        .iter()
        .filter(|u| {
            u.id.to_string() == text
                || u.username == text
                || (!u.email.is_empty() && u.email == text)
                || (!u.idnumber.is_empty() && u.idnumber == text)
        })
        .map(|u| u.id)
        .collect();
    if !exact.is_empty() {
        return exact;
    }
    let needle = text.to_ascii_lowercase();
    users
        .iter()
        .filter(|u| {
            format!("{} {}", u.firstname, u.lastname)
                .to_ascii_lowercase()
                .contains(&needle)
        })
        .map(|u| u.id)
        .collect()
}

async fn demo_db(db: &common::TestDb) {
    common::build_demo_at(
        &db.url(),
        usestats::demo::DemoOptions {
            users: 120,
            courses: 12,
            log_rows: 2_000,
            local_wwwroot: "http://127.0.0.1:8080".into(),
            remote_hosts: vec!["http://127.0.0.2:8080".into()],
            progress: false,
            ..Default::default()
        },
    )
    .await;
}

#[tokio::test]
async fn user_search_finds_what_the_rule_says_on_every_backend() {
    for db in common::source_dbs() {
        demo_db(&db).await;
        let backend = db.url().split(':').next().unwrap_or_default().to_string();
        let mut conn = db.connect();
        // Names that LIKE would read as patterns, and a case to ignore.
        exec(
            &mut conn,
            "UPDATE mdl_user SET lastname = 'Per%cent_Sign' WHERE id = 7",
        );
        let users = all_users(&mut conn);
        let source = Source::new("mdl_").unwrap();
        let some = users
            .iter()
            .find(|u| {
                u.id > 10
                    && !u.idnumber.is_empty()
                    && u.lastname.is_ascii()
                    && u.firstname.is_ascii()
                    && u.lastname.len() >= 3
            })
            .unwrap();
        let last = some.lastname.clone();
        let part = last[..last.len().min(3)].to_ascii_lowercase();
        for text in [
            part.as_str(),
            &last.to_ascii_uppercase(),
            &format!("{} {}", some.firstname, some.lastname),
            &some.username,
            &some.email,
            &some.idnumber,
            &some.id.to_string(),
            "%",
            "_",
            "cent_s",
            "no such person anywhere",
        ] {
            let found = source.search_users(&mut conn, text, 500).unwrap();
            let ids: BTreeSet<i64> = found.users.iter().map(|f| f.user.id).collect();
            assert_eq!(ids, expected(&users, text), "{backend}: search {text:?}");
            assert!(!found.truncated, "{text:?}");
            // Exact matches come first, and are marked.
            let firsts: Vec<bool> = found.users.iter().map(|f| f.exact).collect();
            assert!(
                firsts.windows(2).all(|w| w[0] >= w[1]),
                "{text:?}: {firsts:?}"
            );
        }
        // An exact username finds its user first, with the home host named.
        let found = source.search_users(&mut conn, &some.username, 10).unwrap();
        assert_eq!(found.users[0].user.id, some.id);
        assert!(found.users[0].exact);
        assert_eq!(found.users[0].host, "http://127.0.0.1:8080");
        assert!(found.users[0].local);
        // A user of the remote host is found by username and says where they live.
        exec(
            &mut conn,
            "INSERT INTO mdl_user (id, auth, confirmed, deleted, suspended, mnethostid, username, \
             idnumber, firstname, lastname, email) VALUES (90001, 'mnet', 1, 0, 0, 3, 'far.away', \
             '', 'Remote', 'Persson', 'far@127.0.0.2')",
        );
        let remote = source.search_users(&mut conn, "far.away", 10).unwrap();
        assert_eq!(remote.users.len(), 1);
        assert_eq!(remote.users[0].host, "http://127.0.0.2:8080");
        assert!(!remote.users[0].local);
        let by_name = source.search_users(&mut conn, "persson", 10).unwrap();
        assert_eq!(by_name.users[0].user.id, 90001);
        // A limit truncates, and says so.
        let all_a = expected(&users, "a");
        assert!(all_a.len() > 5);
        let capped = source.search_users(&mut conn, "a", 5).unwrap();
        assert_eq!(capped.users.len(), 5);
        assert!(capped.truncated);
        assert!(capped.users.iter().all(|f| all_a.contains(&f.user.id)));
        // Blank text finds nobody (not everybody).
        assert!(
            source
                .search_users(&mut conn, "   ", 50)
                .unwrap()
                .users
                .is_empty()
        );
    }
}

#[tokio::test]
async fn course_index_pages_sorts_and_counts_learners_on_every_backend() {
    for db in common::source_dbs() {
        demo_db(&db).await;
        let backend = db.url().split(':').next().unwrap_or_default().to_string();
        let mut conn = db.connect();
        let source = Source::new("mdl_").unwrap();
        let whole = source
            .course_index(&mut conn, "", CourseOrder::Id, 0, 1000)
            .unwrap();
        assert_eq!(
            whole.total, 12,
            "{backend}: every course but the front page"
        );
        assert_eq!(whole.courses.len(), 12);
        for c in &whole.courses {
            let enrolled = source.enrolled_users(&mut conn, c.course.id).unwrap();
            assert_eq!(
                c.learners,
                enrolled.len() as i64,
                "{backend}: course {}",
                c.course.id
            );
        }
        // Pages of 5 by learners: the same courses as the whole list, in that order, once each.
        let mut paged = Vec::new();
        for page in 0..3 {
            let p = source
                .course_index(&mut conn, "", CourseOrder::Learners, page * 5, 5)
                .unwrap();
            assert_eq!(p.total, 12);
            paged.extend(p.courses);
        }
        assert_eq!(paged.len(), 12);
        assert!(paged.windows(2).all(|w| w[0].learners >= w[1].learners));
        let ids: BTreeSet<i64> = paged.iter().map(|c| c.course.id).collect();
        assert_eq!(ids.len(), 12);
        // Past the end: nothing, with the total still said.
        let past = source
            .course_index(&mut conn, "", CourseOrder::ShortName, 100, 5)
            .unwrap();
        assert!(past.courses.is_empty());
        assert_eq!(past.total, 12);
        // A filter on part of a short name, ignoring case.
        let first = &whole.courses[0].course;
        let part = first.shortname[..3].to_ascii_lowercase();
        let filtered = source
            .course_index(&mut conn, &part, CourseOrder::ShortName, 0, 100)
            .unwrap();
        let want: BTreeSet<i64> = whole
            .courses
            .iter()
            .filter(|c| {
                [&c.course.shortname, &c.course.fullname, &c.course.idnumber]
                    .iter()
                    .any(|f| f.to_ascii_lowercase().contains(&part))
            })
            .map(|c| c.course.id)
            .collect();
        let got: BTreeSet<i64> = filtered.courses.iter().map(|c| c.course.id).collect();
        assert_eq!(got, want, "{backend}: filter {part:?}");
        assert_eq!(filtered.total, want.len() as i64);
        let names: Vec<String> = filtered
            .courses
            .iter()
            .map(|c| c.course.shortname.to_lowercase())
            .collect();
        assert!(names.windows(2).all(|w| w[0] <= w[1]), "{names:?}");
    }
}

#[derive(QueryableByName, Debug, Clone, PartialEq)]
struct GroupRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct UserId {
    #[diesel(sql_type = BigInt)]
    userid: i64,
}

fn load<
    T: QueryableByName<diesel::sqlite::Sqlite>
        + QueryableByName<diesel::pg::Pg>
        + QueryableByName<diesel::mysql::Mysql>
        + 'static,
>(
    conn: &mut DbConnection,
    sql: &str,
) -> Vec<T> {
    use diesel::RunQueryDsl;
    match conn {
        DbConnection::Sqlite(c) => diesel::sql_query(sql).load(c).unwrap(),
        DbConnection::Postgres(c) => diesel::sql_query(sql).load(c).unwrap(),
        DbConnection::Mysql(c) => diesel::sql_query(sql).load(c).unwrap(),
    }
}

/// A course's groups and a group's members, read under a prefix other than Moodle's default,
/// are the rows of `groups` and `groups_members` read whole and filtered here.
#[tokio::test]
async fn course_groups_and_members_on_every_backend() {
    for db in common::source_dbs() {
        let backend = db.url().split(':').next().unwrap_or_default().to_string();
        let url = db.url();
        tokio::task::spawn_blocking(move || {
            let mut conn = usestats::store::establish(&url).unwrap();
            let demo = usestats::demo::DemoOptions {
                users: 150,
                courses: 4,
                log_rows: 1_000,
                progress: false,
                ..Default::default()
            };
            usestats::demo::build_demo(&mut conn, "grp_", &demo).unwrap();
        })
        .await
        .unwrap();
        let mut conn = db.connect();
        let source = Source::new("grp_").unwrap();
        let mut courses_with_members = 0;
        for course in 2..=5 {
            let mut want: Vec<GroupRow> = load(
                &mut conn,
                &format!("SELECT id, name FROM grp_groups WHERE courseid = {course}"),
            );
            want.sort_by(|a, b| (&a.name, a.id).cmp(&(&b.name, b.id)));
            let got = source.course_groups(&mut conn, course).unwrap();
            assert!((2..=5).contains(&got.len()), "{backend}: course {course}");
            assert!(got.iter().all(|g| g.courseid == course));
            assert_eq!(
                got.iter()
                    .map(|g| (g.id, g.name.clone()))
                    .collect::<Vec<_>>(),
                want.iter()
                    .map(|g| (g.id, g.name.clone()))
                    .collect::<Vec<_>>(),
                "{backend}: course {course}"
            );
            for g in &got {
                let rows: Vec<UserId> = load(
                    &mut conn,
                    &format!(
                        "SELECT userid FROM grp_groups_members WHERE groupid = {}",
                        g.id
                    ),
                );
                let want: BTreeSet<i64> = rows.into_iter().map(|r| r.userid).collect();
                let members = source.group_members(&mut conn, g.id).unwrap();
                assert!(
                    members.windows(2).all(|w| w[0] < w[1]),
                    "{backend}: sorted, once each"
                );
                assert_eq!(
                    members.into_iter().collect::<BTreeSet<i64>>(),
                    want,
                    "{backend}: group {}",
                    g.id
                );
                courses_with_members += usize::from(!want.is_empty());
            }
        }
        assert!(
            courses_with_members > 4,
            "{backend}: the demo fills its groups"
        );
        // No group of a course that has none, and no members of a group that is not there.
        assert!(source.course_groups(&mut conn, 999_999).unwrap().is_empty());
        assert!(source.group_members(&mut conn, 999_999).unwrap().is_empty());
        // Another prefix's tables are not read.
        assert!(
            Source::new("mdl_")
                .unwrap()
                .course_groups(&mut conn, 2)
                .is_err()
        );
    }
}
