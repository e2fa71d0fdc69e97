/**
 * Structured control flow for a region's blocks, without a label variable: the dominator-tree
 * translation of reducible control-flow graphs into nested `block`/`loop`/`br` (N. Ramsey,
 * "Beyond Relooper", ICFP 2022). A back edge is a `br` to the `loop` its target heads; a forward
 * edge to a node with several forward predecessors (a merge node) is a `br` out of the `block` that
 * the node follows; any other forward edge is the target's own code, placed at the branch.
 *
 * binaryen's Relooper gives the same shape on simple loops, but on call/return webs it either
 * rejected the graph or fell back to a label-dispatch loop (a `local.set $label` and a compare
 * chain on every edge), which made recursive code about twice as slow. Irreducible graphs
 * (a cycle with two entries) get `null` here, and the caller uses the Relooper.
 *
 * The algorithm is generic over the code it builds (`Emit`), so that tests can run its output on
 * a small evaluator instead of binaryen.
 */

/** A control-flow graph: nodes 0..n-1, entry 0; `succ[x][k]` is a node, or -1 for "leaves the region". */
export interface Cfg {
  succ: number[][];
}

/** How to build code: `R` is the builder's expression type. */
export interface Emit<R> {
  /** The statements of node `x` followed by its terminator, where `go(k)` is the transfer to `succ[x][k]`. */
  node(x: number, go: (k: number) => R): R[];
  /** Leave the region from node `x` by its `k`-th out-edge. */
  leave(x: number, k: number): R;
  block(label: string, body: R[]): R;
  loop(label: string, body: R[]): R;
  br(label: string): R;
  /** Several statements as one expression. */
  seq(body: R[]): R;
}

interface Analysis {
  rpo: Int32Array;
  idom: Int32Array;
  children: number[][];
  merge: Uint8Array;
  header: Uint8Array;
}

/** Reverse postorder, dominators, merge nodes and loop headers; null when the graph is irreducible. */
export function analyse(g: Cfg): Analysis | null {
  const n = g.succ.length;
  const rpo = new Int32Array(n).fill(-1);
  const order: number[] = [];
  // Iterative depth-first walk from the entry, numbering in postorder.
  const seen = new Uint8Array(n);
  const stack: { x: number; k: number }[] = [{ x: 0, k: 0 }];
  seen[0] = 1;
  while (stack.length) {
    const top = stack[stack.length - 1];
    const s = g.succ[top.x];
    if (top.k === s.length) {
      order.push(top.x);
      stack.pop();
      continue;
    }
    const t = s[top.k++];
    if (t >= 0 && !seen[t]) {
      seen[t] = 1;
      stack.push({ x: t, k: 0 });
    }
  }
  order.reverse();
  order.forEach((x, i) => { rpo[x] = i; });
  // Dominators (Cooper, Harvey and Kennedy's iteration over reverse postorder).
  const preds: number[][] = Array.from({ length: n }, () => []);
  for (const x of order) for (const t of g.succ[x]) if (t >= 0) preds[t].push(x);
  const idom = new Int32Array(n).fill(-1);
  idom[0] = 0;
  const intersect = (a: number, b: number): number => {
    while (a !== b) {
      while (rpo[a] > rpo[b]) a = idom[a];
      while (rpo[b] > rpo[a]) b = idom[b];
    }
    return a;
  };
  for (let changed = true; changed;) {
    changed = false;
    for (let i = 1; i < order.length; i++) {
      const x = order[i];
      let d = -1;
      for (const p of preds[x]) if (idom[p] >= 0) d = d < 0 ? p : intersect(p, d);
      if (d !== idom[x]) { idom[x] = d; changed = true; }
    }
  }
  const dominates = (a: number, b: number): boolean => {
    for (;;) {
      if (a === b) return true;
      if (b === 0) return false;
      b = idom[b];
    }
  };
  const merge = new Uint8Array(n), header = new Uint8Array(n);
  const forwardIn = new Int32Array(n);
  for (const x of order) {
    for (const t of g.succ[x]) {
      if (t < 0) continue;
      if (rpo[t] <= rpo[x]) {
        if (!dominates(t, x)) return null; // a retreating edge that is no back edge: irreducible
        header[t] = 1;
      } else forwardIn[t]++;
    }
  }
  const children: number[][] = Array.from({ length: n }, () => []);
  for (const x of order) {
    if (forwardIn[x] >= 2) merge[x] = 1;
    if (x !== 0) children[idom[x]].push(x);
  }
  return { rpo, idom, children, merge, header };
}

/** Structured code for `g` from its entry, or null when `g` is irreducible. Unreachable nodes get no code. */
export function structure<R>(g: Cfg, e: Emit<R>): R[] | null {
  const a = analyse(g);
  if (a === null) return null;
  const { rpo, children, merge, header } = a;
  const loopLabel = (x: number) => `L${x}`, blockLabel = (x: number) => `B${x}`;

  const doTree = (x: number): R[] => {
    // Merge children, the latest in reverse postorder outermost (its code comes last).
    const ys = children[x].filter((y) => merge[y]).sort((p, q) => rpo[q] - rpo[p]);
    const code = nodeWithin(x, ys);
    return header[x] ? [e.loop(loopLabel(x), code)] : code;
  };
  const nodeWithin = (x: number, ys: number[]): R[] => {
    if (ys.length === 0) return e.node(x, (k) => doBranch(x, k));
    const [y, ...rest] = ys;
    return [e.block(blockLabel(y), nodeWithin(x, rest)), ...doTree(y)];
  };
  const doBranch = (x: number, k: number): R => {
    const t = g.succ[x][k];
    if (t < 0) return e.leave(x, k);
    if (rpo[t] <= rpo[x]) return e.br(loopLabel(t));
    if (merge[t]) return e.br(blockLabel(t));
    return e.seq(doTree(t));
  };
  return doTree(0);
}
