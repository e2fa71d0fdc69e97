/**
 * jit/structure.ts on graphs, with its output run on a small evaluator: every walk through the
 * structured code must visit nodes along the graph's edges, whatever branch each node takes.
 */
import { test } from "node:test";
import { assert, assertEquals } from "../tests/assert.ts";
import { analyse, type Cfg, type Emit, structure } from "./structure.ts";

type Ast =
  | { t: "visit"; x: number }
  | { t: "switch"; cases: Ast[] }
  | { t: "leave"; x: number; k: number }
  | { t: "block" | "loop"; label: string; body: Ast[] }
  | { t: "br"; label: string }
  | { t: "seq"; body: Ast[] };

const emit: Omit<Emit<Ast>, "node"> = {
  leave: (x, k) => ({ t: "leave", x, k }),
  block: (label, body) => ({ t: "block", label, body }),
  loop: (label, body) => ({ t: "loop", label, body }),
  br: (label) => ({ t: "br", label }),
  seq: (body) => ({ t: "seq", body }),
};

/** An emitter whose terminators switch on a branch chosen by `pick`. */
function emitterFor(g: Cfg): Emit<Ast> {
  return { ...emit, node: (x, go) => [{ t: "visit", x }, { t: "switch", cases: g.succ[x].map((_, k) => go(k)) }] };
}

class Br { constructor(readonly label: string) {} }
class Left { constructor(readonly x: number, readonly k: number) {} }
class Done {}

/** Run `code`, choosing branches with `pick`; returns the nodes visited (and how it left) within `steps` visits. */
function run(code: Ast[], pick: (n: number) => number, steps: number): { visits: number[]; left: [number, number] | null } {
  const visits: number[] = [];
  const exec = (s: Ast): void => {
    switch (s.t) {
      case "visit":
        if (visits.length === steps) throw new Done();
        visits.push(s.x);
        return;
      case "switch": {
        if (s.cases.length === 0) throw new Error("a node without successors fell through");
        exec(s.cases[pick(s.cases.length)]);
        throw new Error("a branch fell through");
      }
      case "leave": throw new Left(s.x, s.k);
      case "br": throw new Br(s.label);
      case "seq": for (const c of s.body) exec(c); return;
      case "block":
        try { for (const c of s.body) exec(c); } catch (e) { if (!(e instanceof Br && e.label === s.label)) throw e; }
        return;
      case "loop":
        for (;;) {
          try { for (const c of s.body) exec(c); return; } catch (e) { if (!(e instanceof Br && e.label === s.label)) throw e; }
        }
    }
  };
  try {
    for (const s of code) exec(s);
    throw new Error("the code fell off its end");
  } catch (e) {
    if (e instanceof Done) return { visits, left: null };
    if (e instanceof Left) return { visits, left: [e.x, e.k] };
    throw e;
  }
}

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => ((s = Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5 >>> 0) / 2 ** 32);
}

/** Check every walk follows the graph's edges. */
function checkWalks(g: Cfg, seed: number): void {
  const code = structure(g, emitterFor(g));
  assert(code !== null, "reducible graph structured");
  const r = rng(seed);
  for (let w = 0; w < 20; w++) {
    const choices: number[] = [];
    const { visits, left } = run(code!, (n) => { const k = Math.floor(r() * n); choices.push(k); return k; }, 200);
    assertEquals(visits[0], 0);
    for (let i = 0; i + 1 < visits.length; i++) {
      assertEquals(g.succ[visits[i]][choices[i]], visits[i + 1], `edge ${i} of walk ${w}`);
    }
    if (left !== null) {
      const last = visits[visits.length - 1];
      assertEquals(left, [last, choices[choices.length - 1]]);
      assertEquals(g.succ[last][left[1]], -1);
    }
  }
}

test("structure: a diamond inside a loop, a loop exit and a leave", () => {
  // 0 -> 1; 1 -> 2 | 3; 2 -> 3; 3 -> 1 | 4; 4 -> leave
  checkWalks({ succ: [[1], [2, 3], [3], [1, 4], [-1]] }, 1);
});

test("structure: a call/return web (a switch back to every return site) stays a loop nest", () => {
  // fib's shape: 0 start -> 1 pass; 1 -> 2 fib; 2 -> 3 ret | 4 push..call; 4 -> 2;
  // 3 ret -> 5 site1 | 6 site2 | 7 site0; 5 -> 2; 6 (add, pop, ret) -> 5 | 6 | 7; 7 -> 1 | leave
  const g: Cfg = { succ: [[1], [2], [3, 4], [5, 6, 7, -1], [2], [2], [5, 6, 7, -1], [1, -1]] };
  assert(analyse(g) !== null);
  checkWalks(g, 2);
});

test("structure: an irreducible graph (a cycle with two entries) is refused", () => {
  assertEquals(structure({ succ: [[1, 2], [2], [1]] }, emitterFor({ succ: [[1, 2], [2], [1]] })), null);
});

test("structure: random reducible graphs, random walks", () => {
  const r = rng(7);
  let tried = 0;
  for (let i = 0; tried < 300; i++) {
    const n = 2 + Math.floor(r() * 12);
    const succ: number[][] = [];
    for (let x = 0; x < n; x++) {
      const k = 1 + Math.floor(r() * 3);
      succ.push(Array.from({ length: k }, () => (r() < 0.1 ? -1 : Math.floor(r() * n))));
    }
    const g = { succ };
    if (analyse(g) === null) continue;
    tried++;
    checkWalks(g, i);
  }
});
