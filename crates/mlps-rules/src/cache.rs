//! Per-thread read cache used while one validation (or one report) walks a tree: directory
//! listings, parsed JSON/YAML files and loaded leaves are read from disk once and then served
//! from memory. Without it the validator listed and parsed every leaf several times (each rule
//! family re-reads, and RPT-01 re-runs reportgen over the same workload), which dominated its cost.
//!
//! The cache is only active inside a [`Scope`] (the outermost scope clears it on drop), so other
//! callers of [`crate::lenient::read_json`] always see the file as it is on disk now. The
//! validator never writes into the tree it checks, so serving a file twice from memory within one
//! scope is equivalent to reading it twice. Parsed contents can be dropped early with
//! [`clear_parsed`] (the validator does so after each system) to bound memory on large trees;
//! listings are small and are kept for the whole scope.
use crate::validate::Leaf;
use serde_json::Value;
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

type Listing = Rc<Vec<(String, bool)>>;
/// A leaf and the parse problems found while loading it.
type LoadedLeaf = Rc<(Leaf, Vec<(PathBuf, String)>)>;

#[derive(Default)]
struct Store {
    depth: usize,
    listings: HashMap<PathBuf, Listing>,
    json: HashMap<PathBuf, Result<Rc<Value>, String>>,
    yaml: HashMap<PathBuf, Result<Rc<Value>, String>>,
    leaves: HashMap<PathBuf, LoadedLeaf>,
}

thread_local! {
    static STORE: RefCell<Store> = RefCell::new(Store::default());
}

/// While alive, reads on this thread go through the cache. Scopes nest; the outermost one
/// empties the cache when dropped.
pub(crate) struct Scope {
    // Not Send: the cache is per thread.
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Scope {
    pub(crate) fn enter() -> Scope {
        STORE.with(|s| s.borrow_mut().depth += 1);
        Scope {
            _not_send: std::marker::PhantomData,
        }
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        STORE.with(|s| {
            let mut s = s.borrow_mut();
            s.depth = s.depth.saturating_sub(1);
            if s.depth == 0 {
                *s = Store::default();
            }
        });
    }
}

impl Scope {
    /// Whether this is the only scope alive on this thread (no enclosing validation).
    pub(crate) fn is_outermost(&self) -> bool {
        STORE.with(|s| s.borrow().depth == 1)
    }
}

/// Forget parsed files and loaded leaves (listings stay).
pub(crate) fn clear_parsed() {
    STORE.with(|s| {
        let mut s = s.borrow_mut();
        s.json.clear();
        s.yaml.clear();
        s.leaves.clear();
    });
}

fn active() -> bool {
    STORE.with(|s| s.borrow().depth > 0)
}

/// `compute(path)` once per scope per path; outside a scope, always `compute(path)`.
pub(crate) fn listing(path: &Path, compute: impl FnOnce(&Path) -> Vec<(String, bool)>) -> Listing {
    if !active() {
        return Rc::new(compute(path));
    }
    if let Some(l) = STORE.with(|s| s.borrow().listings.get(path).cloned()) {
        return l;
    }
    let l = Rc::new(compute(path));
    STORE.with(|s| {
        s.borrow_mut()
            .listings
            .insert(path.to_path_buf(), Rc::clone(&l))
    });
    l
}

pub(crate) enum Format {
    Json,
    Yaml,
}

/// A parsed file, read and parsed at most once per scope (shared, not copied, on a hit).
pub(crate) fn parsed(
    path: &Path,
    format: Format,
    compute: impl FnOnce(&Path) -> Result<Value, String>,
) -> Result<Rc<Value>, String> {
    if !active() {
        return compute(path).map(Rc::new);
    }
    let hit = STORE.with(|s| {
        let s = s.borrow();
        let map = match format {
            Format::Json => &s.json,
            Format::Yaml => &s.yaml,
        };
        map.get(path).cloned()
    });
    if let Some(r) = hit {
        return r;
    }
    let r = compute(path).map(Rc::new);
    STORE.with(|s| {
        let mut s = s.borrow_mut();
        let map = match format {
            Format::Json => &mut s.json,
            Format::Yaml => &mut s.yaml,
        };
        map.insert(path.to_path_buf(), r.clone());
    });
    r
}

/// A loaded leaf, loaded at most once per scope.
pub(crate) fn leaf(
    dir: &Path,
    compute: impl FnOnce(&Path) -> (Leaf, Vec<(PathBuf, String)>),
) -> LoadedLeaf {
    if !active() {
        return Rc::new(compute(dir));
    }
    if let Some(l) = STORE.with(|s| s.borrow().leaves.get(dir).cloned()) {
        return l;
    }
    let l = Rc::new(compute(dir));
    STORE.with(|s| {
        s.borrow_mut()
            .leaves
            .insert(dir.to_path_buf(), Rc::clone(&l))
    });
    l
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn cached_only_inside_scope_and_cleared_after() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("a.json");
        std::fs::write(&p, "{\"x\": 1}").unwrap();
        {
            let _outer = Scope::enter();
            assert_eq!(crate::lenient::read_json(&p).unwrap()["x"], 1);
            std::fs::write(&p, "{\"x\": 2}").unwrap();
            {
                let _inner = Scope::enter();
                // served from the cache: the file is read once per scope
                assert_eq!(crate::lenient::read_json(&p).unwrap()["x"], 1);
            }
            assert_eq!(crate::lenient::read_json(&p).unwrap()["x"], 1);
            clear_parsed();
            assert_eq!(crate::lenient::read_json(&p).unwrap()["x"], 2);
            std::fs::write(&p, "{\"x\": 3}").unwrap();
        }
        // outside any scope: always the file as it is now
        assert_eq!(crate::lenient::read_json(&p).unwrap()["x"], 3);
        std::fs::write(&p, "{\"x\": 4}").unwrap();
        assert_eq!(crate::lenient::read_json(&p).unwrap()["x"], 4);
    }
}
