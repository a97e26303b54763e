//! The tiled matrix product, generated per tile shape with unrolled accumulators, and the choice of
//! tile shape per adapter and problem size.
//!
//! Layout: workgroup (x, y, z) computes the BM x BN tile at rows `y*BM`, columns `x*BN` of batch
//! entry z. Thread (lx, ly) owns rows `ly + i*WGY` and columns `lx + j*WGX` (i < TM, j < TN), so
//! stores are interleaved and coalesce on real GPUs. A and B are read through row/column strides,
//! so transposed operands cost nothing; tiles are bounds-checked, so any size works.
//!
//! Uniforms: 0 M, 1 N, 2 K, 3 batch-lo count, 4..7 A offset/hi stride/lo stride, 7 A row stride,
//! 8 A col stride, 9..12 B offset/hi/lo, 12 B row stride, 13 B col stride, 14..17 C offset/hi/lo,
//! 17 C row stride, 18 alpha (f32), 19 beta (f32; C = alpha*AB + beta*C).

/// A tile shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TileConfig {
    /// Workgroup width (threads along N).
    pub wgx: u32,
    /// Workgroup height (threads along M).
    pub wgy: u32,
    /// Rows per thread.
    pub tm: u32,
    /// Columns per thread.
    pub tn: u32,
    /// Depth of a K step (0: the direct kernel, which reads A and B straight from storage with no
    /// workgroup memory and no barriers, and interleaves columns across the whole grid).
    pub bk: u32,
}

impl TileConfig {
    /// Rows per workgroup tile.
    pub fn bm(&self) -> u32 {
        self.wgy * self.tm
    }
    /// Columns per workgroup tile.
    pub fn bn(&self) -> u32 {
        self.wgx * self.tn
    }
}

/// 128x128 tiles, 8x8 per thread: the best shape measured on lavapipe, and good on large GPU problems.
pub const LARGE: TileConfig = TileConfig { wgx: 16, wgy: 16, tm: 8, tn: 8, bk: 8 };
/// 64x64 tiles, 4x4 per thread.
pub const MEDIUM: TileConfig = TileConfig { wgx: 16, wgy: 16, tm: 4, tn: 4, bk: 16 };
/// 32x32 tiles, 4x4 per thread.
pub const SMALL: TileConfig = TileConfig { wgx: 8, wgy: 8, tm: 4, tn: 4, bk: 16 };
/// 16x16 tiles, 2x2 per thread, for thin products.
pub const TINY: TileConfig = TileConfig { wgx: 8, wgy: 8, tm: 2, tn: 2, bk: 16 };

/// Direct kernel, 16x8 per thread: the best shape measured on lavapipe (about 2.3x the 128x128
/// shared-memory tile there; see BENCHMARKS.md).
pub const DIRECT_LARGE: TileConfig = TileConfig { wgx: 8, wgy: 1, tm: 16, tn: 8, bk: 0 };
/// Direct kernel, 4x8 per thread, for products with few rows.
pub const DIRECT_SMALL: TileConfig = TileConfig { wgx: 8, wgy: 1, tm: 4, tn: 8, bk: 0 };

/// Every tile shape the executor may pick (the kernel tests run each one).
pub const ALL_TILES: [TileConfig; 6] = [LARGE, MEDIUM, SMALL, TINY, DIRECT_LARGE, DIRECT_SMALL];

/// Picks a tile shape. CPU adapters get the direct kernel (no barriers); GPUs get the largest
/// shared-memory tile that still gives enough workgroups to fill the device.
pub fn choose_tile(m: usize, n: usize, batch: usize, cpu_adapter: bool) -> TileConfig {
    if cpu_adapter {
        return if m >= 64 { DIRECT_LARGE } else { DIRECT_SMALL };
    }
    let want = 160;
    for cfg in [LARGE, MEDIUM, SMALL] {
        let tiles = m.div_ceil(cfg.bm() as usize) * n.div_ceil(cfg.bn() as usize) * batch;
        if tiles >= want {
            return cfg;
        }
    }
    if m.min(n) < 16 { TINY } else { SMALL }
}

/// The direct kernel: thread (x, y) owns rows `y*TM + i` and columns `x + j*W` where W is the grid
/// width in threads, so neighbouring invocations read neighbouring B columns and share A's row.
/// On CPU adapters (lavapipe vectorises across invocations) this avoids barrier switching.
pub fn matmul_direct_template(c: TileConfig) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "@compute @workgroup_size({}, {}, 1)\nfn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {{\n",
        c.wgx, c.wgy
    ));
    s.push_str(&preamble("gid"));
    s.push_str(&format!("    let W = nwg.x * {}u;\n", c.wgx));
    for i in 0..c.tm {
        s.push_str(&format!("    let r_{i} = min(gid.y * {}u + {i}u, M - 1u);\n", c.tm));
    }
    for j in 0..c.tn {
        s.push_str(&format!("    let c_{j} = min(gid.x + {j}u * W, N - 1u);\n"));
    }
    for i in 0..c.tm {
        for j in 0..c.tn {
            s.push_str(&format!("    var acc_{i}_{j} = 0.0;\n"));
        }
    }
    s.push_str("    for (var k = 0u; k < K; k = k + 1u) {\n");
    for i in 0..c.tm {
        s.push_str(&format!("        let a_{i} = {{{{A}}}}[a0 + r_{i} * ars + k * acs];\n"));
    }
    for j in 0..c.tn {
        s.push_str(&format!("        let b_{j} = {{{{B}}}}[b0 + k * brs + c_{j} * bcs];\n"));
    }
    for i in 0..c.tm {
        for j in 0..c.tn {
            s.push_str(&format!("        acc_{i}_{j} = fma(a_{i}, b_{j}, acc_{i}_{j});\n"));
        }
    }
    s.push_str("    }\n");
    for i in 0..c.tm {
        for j in 0..c.tn {
            s.push_str(&format!(
                "    {{ let gm = gid.y * {tm}u + {i}u; let gn = gid.x + {j}u * W; if (gm < M && gn < N) {{ let ci = c0 + gm * crs + gn; var v = alpha * acc_{i}_{j}; if (beta != 0.0) {{ v = v + beta * {{{{C}}}}[ci]; }} {{{{C}}}}[ci] = v; }} }}\n",
                tm = c.tm
            ));
        }
    }
    s.push_str("}\n");
    s
}

crate::uniforms! {
    /// The uniform block of a matrix product: sizes, then per operand its offset, batch strides
    /// (outer, inner) and row/column strides, then the scales.
    pub struct MatMulParams {
        m: u32, n: u32, k: u32, batch_lo: u32,
        a_offset: u32, a_batch_hi: u32, a_batch_lo: u32, a_rs: u32, a_cs: u32,
        b_offset: u32, b_batch_hi: u32, b_batch_lo: u32, b_rs: u32, b_cs: u32,
        c_offset: u32, c_batch_hi: u32, c_batch_lo: u32, c_rs: u32,
        alpha: f32, beta: f32,
    }
}

/// The kernels' common start: sizes, operand bases for batch `z` of the grid (`gid` or `wid`).
fn preamble(id: &str) -> String {
    format!(
        "    let M = u_m(); let N = u_n(); let K = u_k();\n\
         let bhi = {id}.z / u_batch_lo(); let blo = {id}.z % u_batch_lo();\n\
         let a0 = u_a_offset() + bhi * u_a_batch_hi() + blo * u_a_batch_lo(); let ars = u_a_rs(); let acs = u_a_cs();\n\
         let b0 = u_b_offset() + bhi * u_b_batch_hi() + blo * u_b_batch_lo(); let brs = u_b_rs(); let bcs = u_b_cs();\n\
         let c0 = u_c_offset() + bhi * u_c_batch_hi() + blo * u_c_batch_lo(); let crs = u_c_rs();\n\
         let alpha = u_alpha(); let beta = u_beta();\n"
    )
}

/// The grid (x, y) of workgroups a tile shape needs for an m x n product.
pub fn matmul_grid(c: TileConfig, m: usize, n: usize) -> (u32, u32) {
    if c.bk == 0 {
        // Direct kernel: each thread covers TN columns spread across the grid, TM rows.
        let threads_x = n.div_ceil(c.tn as usize);
        (threads_x.div_ceil(c.wgx as usize) as u32, m.div_ceil(c.bm() as usize) as u32)
    } else {
        (n.div_ceil(c.bn() as usize) as u32, m.div_ceil(c.bm() as usize) as u32)
    }
}

/// The template of a tile shape (shared-memory tiled, or direct when `bk` is 0).
pub fn template_for(c: TileConfig) -> String {
    if c.bk == 0 { matmul_direct_template(c) } else { matmul_template(c) }
}

/// A tile shape from `DISTK_MATMUL_TILE=wgx,wgy,tm,tn,bk` (for tuning experiments), if set.
pub fn tile_override() -> Option<TileConfig> {
    let v: Vec<u32> =
        std::env::var("DISTK_MATMUL_TILE").ok()?.split(',').filter_map(|x| x.trim().parse().ok()).collect();
    (v.len() == 5).then(|| TileConfig { wgx: v[0], wgy: v[1], tm: v[2], tn: v[3], bk: v[4] })
}

/// The WGSL template of the product for one tile shape (placeholders `{{A}}`, `{{B}}`, `{{C}}`).
pub fn matmul_template(c: TileConfig) -> String {
    let (bm, bn, bk) = (c.bm(), c.bn(), c.bk);
    let threads = c.wgx * c.wgy;
    let mut s = String::new();
    s.push_str(&format!("var<workgroup> As: array<f32, {}>;\nvar<workgroup> Bs: array<f32, {}>;\n", bk * bm, bk * bn));
    s.push_str(&format!(
        "@compute @workgroup_size({}, {}, 1)\nfn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32) {{\n",
        c.wgx, c.wgy
    ));
    s.push_str(&preamble("wid"));
    s.push_str(&format!("    let m0 = wid.y * {bm}u; let n0 = wid.x * {bn}u;\n"));
    for i in 0..c.tm {
        for j in 0..c.tn {
            s.push_str(&format!("    var acc_{i}_{j} = 0.0;\n"));
        }
    }
    s.push_str(&format!("    for (var kt = 0u; kt < K; kt = kt + {bk}u) {{\n"));
    // Loads: A tile is BM x BK stored k-major; B tile is BK x BN stored k-major.
    let a_loads = (bm * bk).div_ceil(threads);
    for l in 0..a_loads {
        s.push_str(&format!(
            "        {{ let e = li + {off}u; if (e < {tot}u) {{ let kk = e / {bm}u; let mm = e % {bm}u; let gm = m0 + mm; let gk = kt + kk; var v = 0.0; if (gm < M && gk < K) {{ v = {{{{A}}}}[a0 + gm * ars + gk * acs]; }} As[kk * {bm}u + mm] = v; }} }}\n",
            off = l * threads,
            tot = bm * bk
        ));
    }
    let b_loads = (bn * bk).div_ceil(threads);
    for l in 0..b_loads {
        s.push_str(&format!(
            "        {{ let e = li + {off}u; if (e < {tot}u) {{ let kk = e / {bn}u; let nn = e % {bn}u; let gn = n0 + nn; let gk = kt + kk; var v = 0.0; if (gn < N && gk < K) {{ v = {{{{B}}}}[b0 + gk * brs + gn * bcs]; }} Bs[kk * {bn}u + nn] = v; }} }}\n",
            off = l * threads,
            tot = bn * bk
        ));
    }
    s.push_str("        workgroupBarrier();\n");
    s.push_str(&format!("        for (var k = 0u; k < {bk}u; k = k + 1u) {{\n"));
    for i in 0..c.tm {
        s.push_str(&format!("            let a_{i} = As[k * {bm}u + lid.y + {}u];\n", i * c.wgy));
    }
    for j in 0..c.tn {
        s.push_str(&format!("            let b_{j} = Bs[k * {bn}u + lid.x + {}u];\n", j * c.wgx));
    }
    for i in 0..c.tm {
        for j in 0..c.tn {
            s.push_str(&format!("            acc_{i}_{j} = fma(a_{i}, b_{j}, acc_{i}_{j});\n"));
        }
    }
    s.push_str("        }\n        workgroupBarrier();\n    }\n");
    for i in 0..c.tm {
        for j in 0..c.tn {
            s.push_str(&format!(
                "    {{ let gm = m0 + lid.y + {}u; let gn = n0 + lid.x + {}u; if (gm < M && gn < N) {{ let ci = c0 + gm * crs + gn; var v = alpha * acc_{i}_{j}; if (beta != 0.0) {{ v = v + beta * {{{{C}}}}[ci]; }} {{{{C}}}}[ci] = v; }} }}\n",
                i * c.wgy,
                j * c.wgx
            ));
        }
    }
    s.push_str("}\n");
    s
}
