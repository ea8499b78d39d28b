//! Q&A pairs: written directly or imported from CSV (RFC 4180: comma-separated, fields may be
//! quoted with `"` and quotes doubled inside them, CRLF or LF line ends, an optional header
//! row naming `question` and `answer` columns in any order).

/// One question and its answer.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QaPair {
    pub question: String,
    pub answer: String,
}

pub const MAX_QUESTION_CHARS: usize = 1_000;
pub const MAX_ANSWER_CHARS: usize = 10_000;
pub const MAX_PAIRS: usize = 10_000;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum QaError {
    #[error("the CSV is not valid UTF-8")]
    NotUtf8,
    #[error("row {row}: {message}")]
    Row { row: usize, message: String },
    #[error("no Q&A pairs found")]
    Empty,
    #[error("more than {MAX_PAIRS} pairs")]
    TooMany,
    #[error("a quoted field is never closed")]
    UnclosedQuote,
}

/// Checks one pair: trimmed, both present, within the length limits. `row` is 1-based for
/// messages.
pub fn check_pair(row: usize, question: &str, answer: &str) -> Result<QaPair, QaError> {
    let (q, a) = (question.trim(), answer.trim());
    let bad = |message: String| QaError::Row { row, message };
    if q.is_empty() || a.is_empty() {
        return Err(bad("question and answer must both be present".into()));
    }
    if q.chars().count() > MAX_QUESTION_CHARS {
        return Err(bad(format!(
            "the question is longer than {MAX_QUESTION_CHARS} characters"
        )));
    }
    if a.chars().count() > MAX_ANSWER_CHARS {
        return Err(bad(format!(
            "the answer is longer than {MAX_ANSWER_CHARS} characters"
        )));
    }
    Ok(QaPair {
        question: q.to_owned(),
        answer: a.to_owned(),
    })
}

/// Splits CSV text into records of fields.
fn records(text: &str) -> Result<Vec<Vec<String>>, QaError> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        any = true;
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => quoted = true,
            ',' => row.push(std::mem::take(&mut field)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
                any = false;
            }
            _ => field.push(c),
        }
        if rows.len() > MAX_PAIRS + 1 {
            return Err(QaError::TooMany);
        }
    }
    if quoted {
        return Err(QaError::UnclosedQuote);
    }
    if any {
        row.push(field);
        rows.push(row);
    }
    Ok(rows)
}

/// Pairs from CSV bytes. With a header row naming `question` and `answer` (any case, any
/// order, other columns ignored) those columns are used; without one, the first two columns.
/// Blank lines are skipped.
pub fn parse_csv(bytes: &[u8]) -> Result<Vec<QaPair>, QaError> {
    let text = std::str::from_utf8(bytes).map_err(|_| QaError::NotUtf8)?;
    let text = text.trim_start_matches('\u{feff}');
    let mut rows = records(text)?;
    rows.retain(|r| r.iter().any(|f| !f.trim().is_empty()));
    let header = rows.first().map(|r| {
        let find = |name: &str| r.iter().position(|f| f.trim().eq_ignore_ascii_case(name));
        (find("question"), find("answer"))
    });
    let (qi, ai, skip) = match header {
        Some((Some(q), Some(a))) => (q, a, 1),
        _ => (0, 1, 0),
    };
    let mut pairs = Vec::new();
    for (i, r) in rows.iter().enumerate().skip(skip) {
        let get = |at: usize| r.get(at).map_or("", String::as_str);
        pairs.push(check_pair(i + 1, get(qi), get(ai))?);
        if pairs.len() > MAX_PAIRS {
            return Err(QaError::TooMany);
        }
    }
    if pairs.is_empty() {
        return Err(QaError::Empty);
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_with_a_header_quotes_and_crlf() {
        let csv = "\u{feff}id,Answer,Question\r\n1,\"Yes, within 30 days.\",Can I return it?\r\n\r\n2,\"He said \"\"hi\"\"\nthen left\",What happened?\r\n";
        assert_eq!(
            parse_csv(csv.as_bytes()),
            Ok(vec![
                QaPair {
                    question: "Can I return it?".into(),
                    answer: "Yes, within 30 days.".into()
                },
                QaPair {
                    question: "What happened?".into(),
                    answer: "He said \"hi\"\nthen left".into()
                },
            ])
        );
    }

    #[test]
    fn csv_without_a_header_uses_the_first_two_columns() {
        let pairs = parse_csv(b"Do you ship abroad?,Yes\nOpen on Sunday?,No").expect("parses");
        assert_eq!(pairs.len(), 2);
        assert_eq!(pairs[1].answer, "No");
    }

    #[test]
    fn bad_csv_names_the_problem() {
        assert_eq!(parse_csv(b"question,answer\n"), Err(QaError::Empty));
        assert_eq!(parse_csv(b"\"open"), Err(QaError::UnclosedQuote));
        assert_eq!(parse_csv(&[0xff, 0xfe]), Err(QaError::NotUtf8));
        assert!(matches!(
            parse_csv(b"question,answer\nonly a question,\n"),
            Err(QaError::Row { row: 2, .. })
        ));
        let long = format!("q,{}", "a".repeat(MAX_ANSWER_CHARS + 1));
        assert!(matches!(
            parse_csv(long.as_bytes()),
            Err(QaError::Row { .. })
        ));
    }
}
