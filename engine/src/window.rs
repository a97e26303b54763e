//! Sliding-window geometry (convolution, im2col, pooling) normalised to three spatial dims, so 1-d,
//! 2-d and 3-d windows share one implementation: missing leading dims have size 1.

/// The geometry of a window over N,C,D,H,W data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window3 {
    /// Input spatial size (d, h, w).
    pub input: [usize; 3],
    /// Output spatial size.
    pub output: [usize; 3],
    /// Window size.
    pub kernel: [usize; 3],
    /// Stride.
    pub stride: [usize; 3],
    /// Dilation.
    pub dilation: [usize; 3],
    /// Padding before each dim.
    pub pad: [usize; 3],
    /// Padding after each dim.
    pub pad_end: [usize; 3],
}

fn lift(v: &[usize], fill: usize) -> [usize; 3] {
    let mut out = [fill; 3];
    let lead = 3 - v.len().min(3);
    for (i, &x) in v.iter().take(3).enumerate() {
        out[lead + i] = x;
    }
    out
}

impl Window3 {
    /// Builds the geometry from the N-d spatial sizes of input and output and the window attributes.
    pub fn new(
        input: &[usize],
        output: &[usize],
        kernel: &[usize],
        stride: &[usize],
        dilation: &[usize],
        pad: &[usize],
        pad_end: &[usize],
    ) -> Self {
        Window3 {
            input: lift(input, 1),
            output: lift(output, 1),
            kernel: lift(kernel, 1),
            stride: lift(stride, 1),
            dilation: lift(dilation, 1),
            pad: lift(pad, 0),
            pad_end: lift(pad_end, 0),
        }
    }

    /// Input spatial element count.
    pub fn input_len(&self) -> usize {
        self.input.iter().product()
    }

    /// Output spatial element count.
    pub fn output_len(&self) -> usize {
        self.output.iter().product()
    }

    /// Window element count.
    pub fn kernel_len(&self) -> usize {
        self.kernel.iter().product()
    }

    /// The input position (d, h, w) read by output position `o` at window offset `k`, or `None`
    /// where it falls into the padding.
    pub fn source(&self, o: [usize; 3], k: [usize; 3]) -> Option<usize> {
        let mut idx = 0usize;
        for i in 0..3 {
            let p = (o[i] * self.stride[i] + k[i] * self.dilation[i]) as isize - self.pad[i] as isize;
            if p < 0 || p as usize >= self.input[i] {
                return None;
            }
            idx = idx * self.input[i] + p as usize;
        }
        Some(idx)
    }

    /// Whether window position `k` of output `o` lies inside the explicitly padded input (what
    /// `count_include_pad` counts), as opposed to the overhang that `ceil_mode` adds.
    pub fn in_padded(&self, o: [usize; 3], k: [usize; 3]) -> bool {
        (0..3).all(|i| o[i] * self.stride[i] + k[i] * self.dilation[i] < self.pad[i] + self.input[i] + self.pad_end[i])
    }

    /// For kernel offset `k`, calls `f(o, Some(i))` for every output position `o` (in order) whose
    /// window reads input position `i` there, and `f(o, None)` where it reads padding. This is the
    /// fast path of the CPU kernels: no division per element.
    #[inline]
    pub fn taps(&self, k: [usize; 3], mut f: impl FnMut(usize, Option<usize>)) {
        let at = |d: usize, o: usize| -> Option<usize> {
            let p = (o * self.stride[d] + k[d] * self.dilation[d]) as isize - self.pad[d] as isize;
            (p >= 0 && (p as usize) < self.input[d]).then_some(p as usize)
        };
        let cols: Vec<Option<usize>> = (0..self.output[2]).map(|c| at(2, c)).collect();
        let mut o = 0;
        for a in 0..self.output[0] {
            let pa = at(0, a);
            for b in 0..self.output[1] {
                let row = match (pa, at(1, b)) {
                    (Some(x), Some(y)) => Some((x * self.input[1] + y) * self.input[2]),
                    _ => None,
                };
                for pc in &cols {
                    f(o, row.and_then(|r| pc.map(|z| r + z)));
                    o += 1;
                }
            }
        }
    }

    /// True for a 2-d (or 1-d) window without padding or dilation whose windows all lie inside
    /// the input: the pooling kernels' fast path.
    pub fn is_plain_2d(&self) -> bool {
        self.input[0] == 1
            && self.kernel[0] == 1
            && self.pad.iter().chain(&self.pad_end).all(|&p| p == 0)
            && self.dilation.iter().all(|&d| d == 1)
            && (self.output[1] - 1) * self.stride[1] + self.kernel[1] <= self.input[1]
            && (self.output[2] - 1) * self.stride[2] + self.kernel[2] <= self.input[2]
    }

    /// Splits a flat output (or kernel) index into (d, h, w).
    pub fn unflatten(dims: [usize; 3], flat: usize) -> [usize; 3] {
        [flat / (dims[1] * dims[2]), (flat / dims[2]) % dims[1], flat % dims[2]]
    }

    /// The geometry as 21 u32s (input, output, kernel, stride, dilation, pad, pad_end) for a shader.
    pub fn to_u32s(&self) -> Vec<u32> {
        [self.input, self.output, self.kernel, self.stride, self.dilation, self.pad, self.pad_end]
            .iter()
            .flat_map(|a| a.iter().map(|&x| x as u32))
            .collect()
    }
}
