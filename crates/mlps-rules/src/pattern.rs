//! A tiny regex subset for the edition's required-file patterns (`\.`, `.`, `*`, `^`, `$`,
//! literal characters). `re.search` semantics: unanchored unless the pattern starts with `^`.

#[derive(Debug, Clone)]
enum Atom {
    Any,
    Lit(char),
}

fn compile(p: &str) -> (bool, Vec<(Atom, bool)>, bool) {
    let mut chars = p.chars().peekable();
    let mut start = false;
    let mut end = false;
    let mut out: Vec<(Atom, bool)> = Vec::new();
    if chars.peek() == Some(&'^') {
        chars.next();
        start = true;
    }
    while let Some(c) = chars.next() {
        let atom = match c {
            '\\' => Atom::Lit(chars.next().unwrap_or('\\')),
            '.' => Atom::Any,
            '$' if chars.peek().is_none() => {
                end = true;
                continue;
            }
            '*' => {
                if let Some(last) = out.last_mut() {
                    last.1 = true;
                }
                continue;
            }
            c => Atom::Lit(c),
        };
        out.push((atom, false));
    }
    (start, out, end)
}

fn m(atoms: &[(Atom, bool)], s: &[char], end: bool) -> bool {
    match atoms.split_first() {
        None => !end || s.is_empty(),
        Some(((a, star), rest)) => {
            let ok = |c: char| match a {
                Atom::Any => true,
                Atom::Lit(l) => *l == c,
            };
            if *star {
                let mut i = 0;
                loop {
                    if m(rest, &s[i..], end) {
                        return true;
                    }
                    if i < s.len() && ok(s[i]) {
                        i += 1;
                    } else {
                        return false;
                    }
                }
            } else {
                !s.is_empty() && ok(s[0]) && m(rest, &s[1..], end)
            }
        }
    }
}

/// Does `pattern` match somewhere in `name`?
pub fn search(pattern: &str, name: &str) -> bool {
    let (start, atoms, end) = compile(pattern);
    let s: Vec<char> = name.chars().collect();
    if start {
        return m(&atoms, &s, end);
    }
    (0..=s.len()).any(|i| m(&atoms, &s[i..], end))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::search;
    #[test]
    fn patterns() {
        assert!(search(
            r"training_run\.stdout.log",
            "training_run.stdout.log"
        ));
        assert!(search(r".*output\.json", "0_output.json"));
        assert!(!search(r".*output\.json", "0_outputXjson"));
        assert!(search(
            r"training_.*_metadata\.json$",
            "training_20260704_050040_metadata.json"
        ));
        assert!(!search(r"dlio\.log$", "dlio.log.bak"));
        assert!(search(r".*summary\.json", "summary.json"));
    }
}
