//! A bounded parallel walk over a dependency graph: each node runs once all its dependencies
//! succeeded; a failure skips everything downstream of it and is reported once.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use futures::stream::{FuturesUnordered, StreamExt};

/// What happened to one node of a walk.
#[derive(Debug, PartialEq)]
pub enum NodeOutcome<E> {
    Done,
    Failed(E),
    /// Not run because the named dependency failed.
    Skipped {
        because: String,
    },
    /// Not run because the walk was cancelled before it started.
    Cancelled,
}

/// Runs `run(node)` for every node, at most `parallelism` at a time, each after all the nodes
/// in `deps[node]` are `Done`. Dependencies outside `deps`' keys count as done. When
/// `cancelled()` turns true, nothing new starts and running nodes finish.
///
/// The futures run concurrently on the caller's task (the work is I/O), so they may borrow.
pub async fn walk<K, E, F, Fut>(
    deps: BTreeMap<K, BTreeSet<K>>,
    parallelism: usize,
    cancelled: impl Fn() -> bool,
    run: F,
) -> BTreeMap<K, NodeOutcome<E>>
where
    K: Ord + Clone + std::fmt::Display,
    F: Fn(K) -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    let parallelism = parallelism.max(1);
    let mut waiting: BTreeMap<K, BTreeSet<K>> = deps
        .iter()
        .map(|(k, ds)| (k.clone(), ds.iter().filter(|d| deps.contains_key(*d) && *d != k).cloned().collect()))
        .collect();
    let mut dependents: BTreeMap<K, Vec<K>> = BTreeMap::new();
    for (k, ds) in &waiting {
        for d in ds {
            dependents.entry(d.clone()).or_default().push(k.clone());
        }
    }
    let mut outcomes = BTreeMap::new();
    let mut running = FuturesUnordered::new();
    loop {
        while running.len() < parallelism {
            let Some(k) = waiting.iter().find(|(_, ds)| ds.is_empty()).map(|(k, _)| k.clone()) else {
                break;
            };
            waiting.remove(&k);
            if cancelled() {
                outcomes.insert(k, NodeOutcome::Cancelled);
                continue;
            }
            let fut = run(k.clone());
            running.push(async move { (k, fut.await) });
        }
        let Some((k, result)) = running.next().await else {
            break;
        };
        match result {
            Ok(()) => {
                for d in dependents.get(&k).into_iter().flatten() {
                    if let Some(ds) = waiting.get_mut(d) {
                        ds.remove(&k);
                    }
                }
                outcomes.insert(k, NodeOutcome::Done);
            }
            Err(e) => {
                skip_downstream(&k, &dependents, &mut waiting, &mut outcomes);
                outcomes.insert(k, NodeOutcome::Failed(e));
            }
        }
    }
    // Whatever is still waiting depends on a cycle; the spec checker prevents that.
    for k in waiting.into_keys() {
        outcomes.insert(k, NodeOutcome::Cancelled);
    }
    outcomes
}

fn skip_downstream<K: Ord + Clone + std::fmt::Display, E>(
    failed: &K,
    dependents: &BTreeMap<K, Vec<K>>,
    waiting: &mut BTreeMap<K, BTreeSet<K>>,
    outcomes: &mut BTreeMap<K, NodeOutcome<E>>,
) {
    let mut stack = vec![failed.clone()];
    while let Some(k) = stack.pop() {
        for d in dependents.get(&k).into_iter().flatten() {
            if waiting.remove(d).is_some() {
                outcomes.insert(d.clone(), NodeOutcome::Skipped { because: failed.to_string() });
                stack.push(d.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn deps(edges: &[(&'static str, &[&'static str])]) -> BTreeMap<String, BTreeSet<String>> {
        edges.iter().map(|(k, ds)| (k.to_string(), ds.iter().map(|d| d.to_string()).collect())).collect()
    }

    #[tokio::test]
    async fn dependencies_run_before_dependents() {
        // A chain c -> b -> a runs in the order a, b, c.
        let order = Arc::new(Mutex::new(Vec::new()));
        let o = order.clone();
        let out = walk(
            deps(&[("a", &[]), ("b", &["a"]), ("c", &["b"])]),
            10,
            || false,
            move |k: String| {
                let o = o.clone();
                async move {
                    o.lock().expect("not poisoned").push(k);
                    Ok::<(), ()>(())
                }
            },
        )
        .await;
        assert_eq!(*order.lock().expect("not poisoned"), vec!["a", "b", "c"]);
        assert!(out.values().all(|o| *o == NodeOutcome::Done));
    }

    #[tokio::test]
    async fn failure_skips_only_what_depends_on_it() {
        // b fails: c (needs b) and d (needs c) are skipped, x (independent) still runs.
        let out = walk(
            deps(&[("b", &[]), ("c", &["b"]), ("d", &["c"]), ("x", &[])]),
            2,
            || false,
            |k: String| async move { if k == "b" { Err("boom") } else { Ok(()) } },
        )
        .await;
        assert_eq!(out["b"], NodeOutcome::Failed("boom"));
        assert_eq!(out["c"], NodeOutcome::Skipped { because: "b".into() });
        assert_eq!(out["d"], NodeOutcome::Skipped { because: "b".into() });
        assert_eq!(out["x"], NodeOutcome::Done);
    }

    #[tokio::test]
    async fn parallelism_is_bounded() {
        // Eight independent nodes with a bound of 3 never have more than 3 running at once.
        let now = Arc::new(Mutex::new((0usize, 0usize)));
        let n = now.clone();
        let nodes: BTreeMap<String, BTreeSet<String>> = (0..8).map(|i| (i.to_string(), BTreeSet::new())).collect();
        walk(
            nodes,
            3,
            || false,
            move |_k: String| {
                let n = n.clone();
                async move {
                    {
                        let mut g = n.lock().expect("not poisoned");
                        g.0 += 1;
                        g.1 = g.1.max(g.0);
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    n.lock().expect("not poisoned").0 -= 1;
                    Ok::<(), ()>(())
                }
            },
        )
        .await;
        let max = now.lock().expect("not poisoned").1;
        assert!((2..=3).contains(&max), "max concurrent {max}");
    }
}
