//! The course page's learner table as the query string asks for it: filtered by part of a
//! name or username, sorted on any column either way, and cut to one page of 50 or 100. All of
//! it happens on the server over the report's rows, so a course of thousands sends one page
//! and every state of the table is a link.

use std::cmp::Ordering;

use hyper::StatusCode;

use crate::console::{ConsoleRequest, Reply};
use crate::reports::course::LearnerRow;

/// Rows a page shows when the query does not say.
pub const DEFAULT_PER_PAGE: usize = 50;
/// The sizes a person may pick.
pub const PER_PAGE: [usize; 2] = [50, 100];
/// Pages past this are refused rather than computed: no course has 100 million learners.
const MAX_PAGE: usize = 1_000_000;

/// A column of the learner table: its key in the query string, its heading, and whether it
/// holds a number (numbers sort most first by default, text from A).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Name,
    Username,
    InCourse,
    Activities,
    Other,
    Total,
    Sessions,
    LastAccess,
}

impl Column {
    pub const ALL: [Column; 8] = [
        Column::Name,
        Column::Username,
        Column::InCourse,
        Column::Activities,
        Column::Other,
        Column::Total,
        Column::Sessions,
        Column::LastAccess,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Column::Name => "name",
            Column::Username => "username",
            Column::InCourse => "course",
            Column::Activities => "activities",
            Column::Other => "other",
            // "time" is what links made before every column sorted said for the total.
            Column::Total => "time",
            Column::Sessions => "sessions",
            Column::LastAccess => "last",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Column::Name => "Name",
            Column::Username => "Username",
            Column::InCourse => "In course",
            Column::Activities => "Activities",
            Column::Other => "Other",
            Column::Total => "Total",
            Column::Sessions => "Sessions",
            Column::LastAccess => "Last access",
        }
    }

    pub fn numeric(self) -> bool {
        !matches!(self, Column::Name | Column::Username | Column::LastAccess)
    }

    /// The direction a first click sorts in: the most (or the latest) first for numbers and
    /// times, A to Z for text.
    pub fn default_descending(self) -> bool {
        !matches!(self, Column::Name | Column::Username)
    }

    fn compare(self, a: &LearnerRow, b: &LearnerRow) -> Ordering {
        match self {
            Column::Name => Ordering::Equal,
            Column::Username => a.username.cmp(&b.username),
            Column::InCourse => a.coursetime.cmp(&b.coursetime),
            Column::Activities => a.activitytime.cmp(&b.activitytime),
            Column::Other => a.othertime.cmp(&b.othertime),
            Column::Total => a.coursetotal.cmp(&b.coursetotal),
            Column::Sessions => a.sessions.cmp(&b.sessions),
            Column::LastAccess => a.last_access.cmp(&b.last_access),
        }
    }
}

/// What the query string asks of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableAsk {
    /// Part of a name or username, as typed (trimmed); empty for everyone.
    pub q: String,
    pub sort: Column,
    pub descending: bool,
    pub per_page: usize,
    /// From 1.
    pub page: usize,
}

impl TableAsk {
    /// The table asked for, or the page that says which value is wrong and what it may be.
    pub fn parse(request: &ConsoleRequest) -> Result<TableAsk, Reply> {
        let refuse = |message: String| Err(Reply::Error(StatusCode::BAD_REQUEST, message));
        let sort = match request.query("sort") {
            None => Column::Total,
            Some(text) => match Column::ALL.iter().find(|c| c.key() == text) {
                Some(column) => *column,
                None => {
                    let keys: Vec<&str> = Column::ALL.iter().map(|c| c.key()).collect();
                    return refuse(format!(
                        "The table cannot sort by “{text}”: sort is one of {}.",
                        keys.join(", ")
                    ));
                }
            },
        };
        let descending = match request.query("dir") {
            None => sort.default_descending(),
            Some("asc") => false,
            Some("desc") => true,
            Some(text) => {
                return refuse(format!(
                    "“{text}” is not a direction: dir is asc (A to Z, least first) or desc."
                ));
            }
        };
        let per_page = match request.query("per_page") {
            None => DEFAULT_PER_PAGE,
            Some(text) => match text.parse::<usize>() {
                Ok(n) if PER_PAGE.contains(&n) => n,
                _ => {
                    return refuse(format!(
                        "The table shows 50 or 100 learners a page, not “{text}” (per_page=50 or per_page=100)."
                    ));
                }
            },
        };
        let page = match request.query("page") {
            None => 1,
            Some(text) => match text.parse::<usize>() {
                Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
                _ => {
                    return refuse(format!(
                        "“{text}” is not a page number: pages count from 1 (page=1, page=2…)."
                    ));
                }
            },
        };
        Ok(TableAsk {
            q: request.query("q").unwrap_or("").trim().to_string(),
            sort,
            descending,
            per_page,
            page,
        })
    }

    /// The learners the filter keeps, in the report's order (most time first).
    pub fn filter<'a>(&self, learners: &'a [LearnerRow]) -> Vec<&'a LearnerRow> {
        let needle = self.q.to_lowercase();
        learners
            .iter()
            .filter(|l| {
                needle.is_empty()
                    || l.username.to_lowercase().contains(&needle)
                    || format!("{} {}", l.firstname, l.lastname)
                        .to_lowercase()
                        .contains(&needle)
            })
            .collect()
    }

    /// Sorts the rows by the column asked for; equal values by last name, first name and id,
    /// A to Z whatever the direction, so a page boundary never falls between two orders.
    pub fn sort(&self, rows: &mut [&LearnerRow]) {
        rows.sort_by(|a, b| {
            let by_column = self.sort.compare(a, b);
            let by_column = if self.descending {
                by_column.reverse()
            } else {
                by_column
            };
            let by_name =
                (&a.lastname, &a.firstname, a.userid).cmp(&(&b.lastname, &b.firstname, b.userid));
            let by_name = if self.sort == Column::Name && self.descending {
                by_name.reverse()
            } else {
                by_name
            };
            by_column.then(by_name)
        });
    }

    /// The first row of the page asked for (0-based).
    pub fn offset(&self) -> usize {
        (self.page - 1).saturating_mul(self.per_page)
    }

    /// The number of pages `rows` rows fill (at least 1).
    pub fn pages(&self, rows: usize) -> usize {
        rows.div_ceil(self.per_page).max(1)
    }
}

/// The page numbers a pager offers: the first, the last, and two either side of the current
/// one; `None` marks a gap.
pub fn page_numbers(current: usize, pages: usize) -> Vec<Option<usize>> {
    let mut out = Vec::new();
    for n in 1..=pages {
        let near = n + 2 >= current && n <= current + 2;
        if n == 1 || n == pages || near {
            out.push(Some(n));
        } else if out.last() != Some(&None) {
            out.push(None);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pagers_keep_the_ends_and_the_neighbours() {
        assert_eq!(page_numbers(1, 1), vec![Some(1)]);
        assert_eq!(
            page_numbers(5, 36),
            vec![
                Some(1),
                None,
                Some(3),
                Some(4),
                Some(5),
                Some(6),
                Some(7),
                None,
                Some(36)
            ]
        );
        assert_eq!(page_numbers(2, 4), vec![Some(1), Some(2), Some(3), Some(4)]);
    }
}
