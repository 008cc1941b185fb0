//! The dependency graph of a runbook's steps, and cycle finding for validation.
//!
//! Nodes are step indices in file order; an edge `a -> b` means "b runs after a".
//! Ties are always broken by file order, so levels, the critical path and the rollback
//! order are the same on every run of the same runbook.

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

/// Builds the graph from `deps[i]` = indices step `i` runs after.
pub fn dependency_graph(deps: &[Vec<usize>]) -> DiGraph<usize, ()> {
    let mut g = DiGraph::with_capacity(deps.len(), deps.iter().map(Vec::len).sum());
    for i in 0..deps.len() {
        g.add_node(i);
    }
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            g.add_edge(NodeIndex::new(d), NodeIndex::new(i), ());
        }
    }
    g
}

/// Whether each step is one service restoration depends on: a
/// `recovered_when` step or one of their dependencies, however far back. Everything,
/// when the runbook names no `recovered_when` (the run's end is its recovery).
pub fn recovery_path(deps: &[Vec<usize>], recovered: impl IntoIterator<Item = usize>) -> Vec<bool> {
    let mut on = vec![false; deps.len()];
    let mut todo: Vec<usize> = recovered.into_iter().collect();
    if todo.is_empty() {
        return vec![true; deps.len()];
    }
    while let Some(i) = todo.pop() {
        if i < on.len() && !on[i] {
            on[i] = true;
            todo.extend(deps[i].iter().copied());
        }
    }
    on
}

/// Every dependency cycle, each as step indices in "runs after" order: `[a, b, c]`
/// means a runs after b, b after c, c after a. Each cycle starts at its lowest index;
/// cycles are ordered by that index. One cycle is reported per strongly connected
/// component, which is the one an author must break.
pub fn find_cycles(deps: &[Vec<usize>]) -> Vec<Vec<usize>> {
    // Edges point from a step to what it runs after, so a walk reads in "after" order.
    let mut g: DiGraph<usize, ()> = DiGraph::with_capacity(deps.len(), 0);
    for i in 0..deps.len() {
        g.add_node(i);
    }
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            g.add_edge(NodeIndex::new(i), NodeIndex::new(d), ());
        }
    }
    let mut cycles = Vec::new();
    for scc in tarjan_scc(&g) {
        let start = *scc.iter().min().expect("an scc is never empty");
        let self_loop = deps[start.index()].contains(&start.index());
        if scc.len() == 1 && !self_loop {
            continue;
        }
        if self_loop {
            cycles.push(vec![start.index()]);
            continue;
        }
        cycles.push(shortest_cycle_through(&g, start, &scc));
    }
    cycles.sort_by_key(|c| c[0]);
    cycles
}

/// Breadth-first search inside one component for the shortest way back to `start`.
fn shortest_cycle_through(
    g: &DiGraph<usize, ()>,
    start: NodeIndex,
    scc: &[NodeIndex],
) -> Vec<usize> {
    let mut parent: Vec<Option<NodeIndex>> = vec![None; g.node_count()];
    let mut queue = std::collections::VecDeque::from([start]);
    let mut seen = vec![false; g.node_count()];
    seen[start.index()] = true;
    while let Some(n) = queue.pop_front() {
        let mut next: Vec<NodeIndex> = g.neighbors(n).filter(|m| scc.contains(m)).collect();
        next.sort();
        for m in next {
            if m == start {
                let mut path = vec![n.index()];
                let mut cur = n;
                while let Some(p) = parent[cur.index()] {
                    path.push(p.index());
                    cur = p;
                }
                path.reverse();
                return path;
            }
            if !seen[m.index()] {
                seen[m.index()] = true;
                parent[m.index()] = Some(n);
                queue.push_back(m);
            }
        }
    }
    // A component of two or more nodes always has a cycle through each of its nodes.
    scc.iter().map(|n| n.index()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_cycles_in_a_dag() {
        assert!(find_cycles(&[vec![], vec![0], vec![0, 1]]).is_empty());
    }

    #[test]
    fn cycles_are_named_in_order_from_the_lowest_step() {
        // 0 after 2, 2 after 1, 1 after 0.
        assert_eq!(
            find_cycles(&[vec![2], vec![0], vec![1]]),
            vec![vec![0, 2, 1]]
        );
        // A self-dependency is a cycle of one.
        assert_eq!(find_cycles(&[vec![], vec![1]]), vec![vec![1]]);
        // Two separate cycles are both reported.
        let deps = [vec![1], vec![0], vec![3], vec![2], vec![]];
        assert_eq!(find_cycles(&deps), vec![vec![0, 1], vec![2, 3]]);
    }

    #[test]
    fn the_shortest_cycle_is_reported() {
        // 0 after 1 and 3; 1 after 2; 2 after 0; 3 after 0: the cycle 0-3 is shortest.
        let deps = [vec![1, 3], vec![2], vec![0], vec![0]];
        assert_eq!(find_cycles(&deps), vec![vec![0, 3]]);
    }
}
