//! `usestats report --format csv|xlsx|ods` on a demo site, checked by opening the files: the
//! cells equal `report --format json` (names, seconds, h:mm:ss, ISO 8601 dates), hostile names
//! are defused text and never formulas, the ODS package is what readers expect, and the window
//! is in the file name.

mod common;
#[path = "browser_tasks/sheets.rs"]
mod sheets;

use std::path::Path;
use std::process::{Command, Output};

use diesel::{Connection, RunQueryDsl};
use sheets::{Cell, excel_serial_to_unix, hms, iso, iso_duration_seconds};

/// Names a learner may give themselves, and how a spreadsheet must show each: text, with a
/// `'` wherever a cell could start a formula under a comma, semicolon or tab separator.
const HOSTILE: [(&str, &str); 4] = [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
    ("@SUM(1)", "'@SUM(1)"),
    ("-1+1", "'-1+1"),
    ("a;=1+1", "a;'=1+1"),
];

/// The course's short name, with a space, a slash and a letter outside ASCII.
const SHORTNAME: &str = "Économie 1/2";
const FROM: &str = "2000-01-01";

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_usestats"))
        .current_dir(dir)
        .arg("--config")
        .arg(dir.join("usestats.toml"))
        .args(args)
        .output()
        .unwrap()
}

fn ok(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = run(dir, args);
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn json(dir: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_slice(&ok(dir, &all)).unwrap()
}

/// What a text cell must show for `name`.
fn shown(name: &str) -> String {
    HOSTILE
        .iter()
        .find(|(given, _)| *given == name)
        .map_or_else(|| name.to_string(), |(_, defused)| defused.to_string())
}

/// A demo site whose busiest course has learners with hostile names and a short name that
/// needs cleaning for a file name: (directory, course id, `--to` date, report as JSON).
fn site() -> (tempfile::TempDir, i64, time::Date, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    json(path, &["demo", "--log-rows", "5000", "--seed", "4"]);
    let courses = json(path, &["courses", "--sort", "learners"]);
    let id = courses["courses"][0]["id"].as_i64().unwrap();
    let course = format!("id:{id}");
    let tomorrow = time::OffsetDateTime::now_utc().date().next_day().unwrap();
    let to = tomorrow.to_string();
    let before = json(
        path,
        &["report", "--course", &course, "--from", FROM, "--to", &to],
    );
    let learners = before["learners"].as_array().unwrap();
    assert!(learners.len() >= 4, "{before}");
    let mut conn =
        diesel::SqliteConnection::establish(path.join("usestats.sqlite3").to_str().unwrap())
            .unwrap();
    let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
    for (i, pair) in HOSTILE.chunks(2).enumerate() {
        diesel::sql_query(format!(
            "UPDATE mdl_user SET firstname = {}, lastname = {} WHERE id = {}",
            quote(pair[0].0),
            quote(pair[1].0),
            learners[i]["userid"]
        ))
        .execute(&mut conn)
        .unwrap();
    }
    diesel::sql_query(format!(
        "UPDATE mdl_course SET shortname = {}, fullname = {} WHERE id = {id}",
        quote(SHORTNAME),
        quote(HOSTILE[0].0)
    ))
    .execute(&mut conn)
    .unwrap();
    let report = json(
        path,
        &["report", "--course", &course, "--from", FROM, "--to", &to],
    );
    (dir, id, tomorrow, report)
}

/// The raw columns of a learner, as JSON has them, in the export's order.
const RAW: [&str; 8] = [
    "coursetime",
    "activitytime",
    "othertime",
    "coursetotal",
    "events",
    "sessions",
    "first_access",
    "last_access",
];

/// Checks one row of an opened XLSX or ODS file against the learner's JSON, given how that
/// format holds a number, a duration and a time.
fn check_row(
    cells: &[Cell],
    learner: &serde_json::Value,
    number: impl Fn(&Cell) -> Option<i64>,
    duration: impl Fn(&Cell) -> i64,
    time: impl Fn(&Cell) -> i64,
) {
    let who = &learner["username"];
    assert!(cells.iter().all(|c| !c.formula), "{who}: a formula");
    assert_eq!(number(&cells[0]), learner["userid"].as_i64(), "{who}");
    for (col, field) in [(1, "username"), (2, "firstname"), (3, "lastname")] {
        assert!(
            matches!(cells[col].kind.as_str(), "s" | "string"),
            "{who} {field}: {:?}",
            cells[col]
        );
        assert_eq!(
            cells[col].text,
            shown(learner[field].as_str().unwrap()),
            "{who}"
        );
    }
    for (i, field) in RAW.iter().enumerate() {
        assert_eq!(
            number(&cells[4 + i]),
            learner[field].as_i64(),
            "{who} {field}"
        );
    }
    for (i, field) in RAW[..4].iter().enumerate() {
        let seconds = learner[field].as_i64().unwrap();
        assert_eq!(duration(&cells[12 + i]), seconds, "{who} {field}_hms");
    }
    for (i, field) in ["first_access", "last_access"].iter().enumerate() {
        let cell = cells.get(16 + i).cloned().unwrap_or_default();
        match learner[field].as_i64() {
            Some(t) => assert_eq!(time(&cell), t, "{who} {field}_iso"),
            None => assert_eq!(cell.kind, "", "{who} {field}_iso: empty"),
        }
    }
}

#[tokio::test]
async fn xlsx_and_ods_files_hold_the_reports_cells() {
    tokio::task::spawn_blocking(|| {
        let (dir, id, tomorrow, report) = site();
        let to = tomorrow.to_string();
        let path = dir.path();
        let course = format!("id:{id}");
        let learners = report["learners"].as_array().unwrap();
        assert!(
            HOSTILE.iter().all(|(name, _)| report
                .to_string()
                .contains(&serde_json::to_string(name).unwrap())),
            "every hostile name is in the report: {report}"
        );
        let args = ["report", "--course", &course, "--from", FROM, "--to", &to];
        let headers = usestats::reports::course::CSV_HEADER;

        // XLSX to the default name: the course's cleaned short name and the days, inclusive.
        // A date as --to is inclusive: the file says that day.
        let last_day = tomorrow;
        let name = format!("course-Économie_1_2-{FROM}_{last_day}.xlsx");
        let said = ok(path, &[&args[..], &["--format", "xlsx"]].concat());
        assert_eq!(
            String::from_utf8(said).unwrap().trim(),
            format!("wrote {name} (xlsx, {} learners)", learners.len())
        );
        let (rows, styles) = sheets::xlsx(&std::fs::read(path.join(&name)).unwrap());
        let texts: Vec<&str> = rows[0].iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts, headers);
        assert_eq!(rows.len(), learners.len() + 1);
        assert!(styles.contains("[h]:mm:ss"), "durations are durations");
        assert!(styles.contains("yyyy-mm-dd"), "times are dates");
        let number = |c: &Cell| (c.kind == "n").then(|| c.value.parse().unwrap());
        for (row, learner) in rows[1..].iter().zip(learners) {
            check_row(
                row,
                learner,
                number,
                |c| {
                    assert!(!c.style.is_empty(), "a formatted duration");
                    (c.value.parse::<f64>().unwrap() * 86_400.0).round() as i64
                },
                |c| excel_serial_to_unix(c.value.parse().unwrap()),
            );
        }

        // ODS to a file named on the command line.
        ok(
            path,
            &[&args[..], &["--format", "ods", "--output", "out.ods"]].concat(),
        );
        let (rows, _) = sheets::ods(&std::fs::read(path.join("out.ods")).unwrap());
        let texts: Vec<&str> = rows[0].iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts, headers);
        assert_eq!(rows.len(), learners.len() + 1);
        for (row, learner) in rows[1..].iter().zip(learners) {
            check_row(
                row,
                learner,
                |c| {
                    (c.kind == "float").then(|| {
                        assert_eq!(c.text, c.value, "a number shows itself");
                        c.value.parse().unwrap()
                    })
                },
                |c| {
                    assert_eq!(c.kind, "time");
                    let seconds = iso_duration_seconds(&c.value);
                    assert_eq!(c.text, hms(seconds));
                    seconds
                },
                |c| {
                    assert_eq!(c.kind, "date");
                    let t = learners
                        .iter()
                        .flat_map(|l| [l["first_access"].as_i64(), l["last_access"].as_i64()])
                        .flatten()
                        .find(|t| iso(*t) == c.text)
                        .expect("an ISO date of the report");
                    assert_eq!(format!("{}Z", c.value), c.text);
                    t
                },
            );
        }
    })
    .await
    .unwrap();
}

/// A CSV line's cells (RFC 4180 quoting), for checking the columns after the raw ones.
fn csv_cells(line: &str) -> Vec<String> {
    let (mut cells, mut cell, mut quoted, mut chars) =
        (Vec::new(), String::new(), false, line.chars().peekable());
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => cells.push(std::mem::take(&mut cell)),
            (c, _) => cell.push(c),
        }
    }
    cells.push(cell);
    cells
}

#[tokio::test]
async fn csv_has_human_columns_and_exports_refuse_what_they_cannot_do() {
    tokio::task::spawn_blocking(|| {
        let (dir, id, tomorrow, report) = site();
        let to = tomorrow.to_string();
        let path = dir.path();
        let course = format!("id:{id}");
        let learners = report["learners"].as_array().unwrap();
        let args = ["report", "--course", &course, "--from", FROM, "--to", &to];

        let csv = String::from_utf8(ok(path, &[&args[..], &["--format", "csv"]].concat())).unwrap();
        let lines: Vec<&str> = csv.trim_end_matches("\r\n").split("\r\n").collect();
        assert_eq!(lines.len(), learners.len() + 1);
        for (line, l) in lines[1..].iter().zip(learners) {
            let cells = csv_cells(line);
            assert_eq!(cells.len(), 18, "{line}");
            assert_eq!(cells[2], shown(l["firstname"].as_str().unwrap()), "{line}");
            assert_eq!(cells[3], shown(l["lastname"].as_str().unwrap()), "{line}");
            assert_eq!(cells[7], l["coursetotal"].to_string());
            assert_eq!(cells[15], hms(l["coursetotal"].as_i64().unwrap()));
            let time = |t: &serde_json::Value| t.as_i64().map(iso).unwrap_or_default();
            assert_eq!(cells[16], time(&l["first_access"]));
            assert_eq!(cells[17], time(&l["last_access"]));
        }
        // The same bytes to a file.
        ok(
            path,
            &[&args[..], &["--format", "csv", "-o", "c.csv"]].concat(),
        );
        assert_eq!(std::fs::read_to_string(path.join("c.csv")).unwrap(), csv);

        // A spreadsheet to a pipe with `--output -`; with --json, where the file went.
        let piped = ok(
            path,
            &[&args[..], &["--format", "xlsx", "--output", "-"]].concat(),
        );
        let (rows, _) = sheets::xlsx(&piped);
        assert_eq!(rows.len(), learners.len() + 1);
        let said = json(
            path,
            &[&args[..], &["--format", "ods", "-o", "j.ods"]].concat(),
        );
        assert_eq!(said["file"], "j.ods");
        assert_eq!(said["learners"], learners.len());
        assert_eq!(
            said["bytes"],
            std::fs::metadata(path.join("j.ods")).unwrap().len()
        );

        // --output is for exports; refused for a table, which writes nothing.
        let refused = run(path, &[&args[..], &["--output", "t.txt"]].concat());
        assert_eq!(refused.status.code(), Some(1));
        assert!(
            String::from_utf8_lossy(&refused.stderr)
                .contains("--output takes the csv, xlsx and ods formats"),
            "{}",
            String::from_utf8_lossy(&refused.stderr)
        );
        assert!(!path.join("t.txt").exists());
        // A directory that does not exist: a clear error, nothing written.
        let missing = run(
            path,
            &[&args[..], &["--format", "xlsx", "-o", "no/such/dir/x.xlsx"]].concat(),
        );
        assert_eq!(missing.status.code(), Some(1));
        assert!(
            String::from_utf8_lossy(&missing.stderr).contains("writing no/such/dir/x.xlsx"),
            "{}",
            String::from_utf8_lossy(&missing.stderr)
        );
    })
    .await
    .unwrap();
}
