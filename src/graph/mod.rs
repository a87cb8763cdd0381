//! The dependency graph of resources: edges from references and `depends_on`, cycle
//! diagnostics that show every reference on the cycle, and DOT output.

mod walk;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};

pub use walk::{NodeOutcome, walk};

use crate::addr::ResourceAddr;

/// Resources and the edges "must come after": an edge `a -> b` means `a` depends on `b`.
pub struct DependencyGraph {
    graph: DiGraph<ResourceAddr, ()>,
    index: BTreeMap<ResourceAddr, NodeIndex>,
}

impl DependencyGraph {
    /// Builds the graph from (resource, its dependencies); dependencies on unknown addresses
    /// are ignored (the spec checker reports them).
    pub fn new<'a>(nodes: impl IntoIterator<Item = (&'a ResourceAddr, BTreeSet<ResourceAddr>)>) -> Self {
        let nodes: Vec<_> = nodes.into_iter().collect();
        let mut graph = DiGraph::new();
        let mut index = BTreeMap::new();
        for (addr, _) in &nodes {
            index.insert((*addr).clone(), graph.add_node((*addr).clone()));
        }
        for (addr, deps) in &nodes {
            for dep in deps {
                if let Some(&to) = index.get(dep) {
                    graph.update_edge(index[*addr], to, ());
                }
            }
        }
        Self { graph, index }
    }

    /// What `addr` depends on directly.
    pub fn dependencies(&self, addr: &ResourceAddr) -> BTreeSet<ResourceAddr> {
        self.index
            .get(addr)
            .map_or_else(BTreeSet::new, |&i| self.graph.neighbors(i).map(|n| self.graph[n].clone()).collect())
    }

    /// `addr` and everything it depends on, transitively.
    pub fn with_dependencies(&self, addr: &ResourceAddr) -> BTreeSet<ResourceAddr> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![addr.clone()];
        while let Some(a) = stack.pop() {
            if seen.insert(a.clone()) {
                stack.extend(self.dependencies(&a));
            }
        }
        seen
    }

    /// Every node, each after everything it depends on (petgraph's topological sort). With a
    /// cycle (which the spec checker refuses before anything is planned) the nodes come in
    /// address order.
    pub fn dependencies_first(&self) -> Vec<ResourceAddr> {
        match toposort(&self.graph, None) {
            // Edges point from dependent to dependency: the sort puts dependents first.
            Ok(order) => order.into_iter().rev().map(|i| self.graph[i].clone()).collect(),
            Err(_) => self.index.keys().cloned().collect(),
        }
    }

    /// Each dependency cycle as the path around it, starting from its smallest address.
    pub fn cycles(&self) -> Vec<Vec<ResourceAddr>> {
        let g = &self.graph;
        let mut out = Vec::new();
        for scc in tarjan_scc(g) {
            let self_loop = scc.len() == 1 && g.contains_edge(scc[0], scc[0]);
            if scc.len() < 2 && !self_loop {
                continue;
            }
            let members: BTreeSet<NodeIndex> = scc.iter().copied().collect();
            let start = *scc.iter().min_by_key(|i| &g[**i]).expect("a cycle has members");
            out.push(cycle_through(g, start, &members).into_iter().map(|i| g[i].clone()).collect());
        }
        out
    }

    /// Graphviz DOT, dependencies pointing from dependent to dependency.
    pub fn to_dot(&self) -> String {
        let mut out = String::from("digraph cruddur {\n  rankdir = \"RL\";\n  node [shape = box];\n");
        for addr in self.index.keys() {
            out.push_str(&format!("  \"{addr}\";\n"));
        }
        let mut edges: Vec<_> = self.graph.edge_indices().filter_map(|e| self.graph.edge_endpoints(e)).collect();
        edges.sort_by(|a, b| (&self.graph[a.0], &self.graph[a.1]).cmp(&(&self.graph[b.0], &self.graph[b.1])));
        for (from, to) in edges {
            out.push_str(&format!("  \"{}\" -> \"{}\";\n", self.graph[from], self.graph[to]));
        }
        out.push_str("}\n");
        out
    }
}

/// A simple cycle from `start` back to it, staying inside one strongly connected component.
fn cycle_through(g: &DiGraph<ResourceAddr, ()>, start: NodeIndex, members: &BTreeSet<NodeIndex>) -> Vec<NodeIndex> {
    let mut prev: BTreeMap<NodeIndex, NodeIndex> = BTreeMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(n) = queue.pop_front() {
        let mut next: Vec<NodeIndex> = g.neighbors(n).filter(|m| members.contains(m)).collect();
        next.sort_by_key(|m| &g[*m]);
        for m in next {
            if m == start {
                let mut path = vec![n];
                while let Some(&p) = prev.get(path.last().expect("path is never empty")) {
                    path.push(p);
                }
                path.reverse();
                return path;
            }
            if !prev.contains_key(&m) && m != start {
                prev.insert(m, n);
                queue.push_back(m);
            }
        }
    }
    vec![start]
}
