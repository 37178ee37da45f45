//! The order `drover images` lists tags in.
//!
//! Newest image first, because the question is almost always "what is the
//! latest build?". Tag names break ties and order the tags whose time is
//! unknown (after all the dated ones); they compare naturally, digit runs
//! as numbers, so `1.10` comes before `1.9` when descending, as a person
//! reading versions expects.

use std::cmp::Ordering;

use crate::TagInfo;

/// Sorts newest first by `created_unix`, then by tag name descending; tags
/// without a known time go last, by tag name descending.
pub(crate) fn sort_newest_first(tags: &mut [TagInfo]) {
    tags.sort_by(|a, b| {
        match (a.created_unix, b.created_unix) {
            (Some(a_time), Some(b_time)) => b_time.cmp(&a_time),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        }
        .then_with(|| natural_cmp(&b.tag, &a.tag))
    });
}

/// Compares strings with runs of ASCII digits compared by value.
fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let a_len = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let b_len = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (a_run, b_run) = (&a[..a_len], &b[..b_len]);
                let trim = |run: &[u8]| -> usize { run.iter().take_while(|&&c| c == b'0').count() };
                let (a_value, b_value) = (&a_run[trim(a_run)..], &b_run[trim(b_run)..]);
                let by_value = a_value
                    .len()
                    .cmp(&b_value.len())
                    .then_with(|| a_value.cmp(b_value));
                // Equal values ("007" and "7"): the padded one sorts after, so the order stays total.
                let order = by_value.then_with(|| a_len.cmp(&b_len));
                if order != Ordering::Equal {
                    return order;
                }
                a = &a[a_len..];
                b = &b[b_len..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(name: &str, created_unix: Option<i64>) -> TagInfo {
        TagInfo {
            tag: name.to_string(),
            digest: None,
            config_digest: None,
            created: None,
            created_unix,
            error: None,
        }
    }

    fn names(tags: &[TagInfo]) -> Vec<&str> {
        tags.iter().map(|t| t.tag.as_str()).collect()
    }

    #[test]
    fn newest_first_then_names_descending_then_unknown_times() {
        let mut tags = vec![
            tag("old", Some(100)),
            tag("unknown-a", None),
            tag("new", Some(300)),
            tag("b-tie", Some(200)),
            tag("unknown-b", None),
            tag("a-tie", Some(200)),
        ];
        sort_newest_first(&mut tags);
        assert_eq!(
            names(&tags),
            ["new", "b-tie", "a-tie", "old", "unknown-b", "unknown-a"]
        );
    }

    #[test]
    fn names_compare_naturally() {
        assert_eq!(natural_cmp("1.10", "1.9"), Ordering::Greater);
        assert_eq!(natural_cmp("v2", "v10"), Ordering::Less);
        assert_eq!(natural_cmp("20151030", "20151029"), Ordering::Greater);
        assert_eq!(natural_cmp("a", "a1"), Ordering::Less);
        assert_eq!(natural_cmp("abc", "abd"), Ordering::Less);
        assert_eq!(natural_cmp("007", "7"), Ordering::Greater);
        assert_eq!(natural_cmp("x", "x"), Ordering::Equal);
        let mut tags = vec![tag("1.9", None), tag("1.10", None), tag("1.2", None)];
        sort_newest_first(&mut tags);
        assert_eq!(names(&tags), ["1.10", "1.9", "1.2"]);
    }
}
