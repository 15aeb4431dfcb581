//! Many short strings in one buffer: the served usernames and lower-cased emails
//! a build keeps for its rules, at a million employees.

/// Strings stored end to end, in the order pushed: far leaner than one `String`
/// each when there are a million of them.
#[derive(Debug, Default)]
pub struct StrArena {
    text: String,
    ends: Vec<u32>,
}

impl StrArena {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }

    pub fn last(&self) -> Option<&str> {
        self.len().checked_sub(1).map(|i| self.get(i))
    }

    pub fn push(&mut self, s: &str) {
        self.text.push_str(s);
        self.ends
            .push(u32::try_from(self.text.len()).unwrap_or(u32::MAX));
    }

    /// For an arena pushed in sorted order: is `s` in it?
    pub fn contains_sorted(&self, s: &str) -> bool {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.get(mid).cmp(s) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return true,
            }
        }
        false
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).map(|i| self.get(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn strings_come_back_as_pushed(strings in proptest::collection::vec(".*", 0..40)) {
            let mut arena = StrArena::default();
            for s in &strings {
                arena.push(s);
            }
            prop_assert_eq!(arena.len(), strings.len());
            prop_assert_eq!(arena.is_empty(), strings.is_empty());
            prop_assert_eq!(arena.iter().collect::<Vec<_>>(), strings.iter().map(String::as_str).collect::<Vec<_>>());
            prop_assert_eq!(arena.last(), strings.last().map(String::as_str));
        }

        #[test]
        fn a_sorted_arena_finds_exactly_its_strings(
            mut strings in proptest::collection::vec("[a-d]{0,3}", 0..30),
            probe in "[a-d]{0,3}",
        ) {
            strings.sort();
            let mut arena = StrArena::default();
            for s in &strings {
                arena.push(s);
            }
            prop_assert_eq!(arena.contains_sorted(&probe), strings.contains(&probe));
        }
    }
}
