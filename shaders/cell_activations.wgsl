// The recurrent cells' gate activations (shaders/lstm_cell*.wgsl, gru_cell*.wgsl): a sigmoid that
// never overflows, and tanh with its argument clamped where f32's tanh is already +-1.
fn sigm(x: f32) -> f32 { return select(exp(x) / (1.0 + exp(x)), 1.0 / (1.0 + exp(-x)), x >= 0.0); }
fn th(x: f32) -> f32 { return tanh(clamp(x, -20.0, 20.0)); }
