//! ONNX → [`Graph`] + [`Weights`].

use std::collections::{HashMap, HashSet};
use std::ops::Deref;
use std::path::Path;
use std::rc::Rc;

use bytes::Bytes;
use prost::Message;

use super::proto::{attr_type, data_type, tensor_shape_proto::dimension, type_proto, AttributeProto};
use super::proto::{GraphProto, ModelProto, NodeProto, TensorProto};
use super::{one_line, OnnxError, MAX_ATTR, MAX_ELEMENTS, SUPPORTED_OPS};
use crate::graph::{Builder, Dims, Graph, TensorId};
use crate::ops::{Act, Conv2d, OpError, Pool2d};
use crate::weights::Weights;

/// A graph's conv/linear/pool work (output elements × per-output taps) may not exceed this.
const MAX_WORK: u64 = 1 << 60;

/// How to import.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// Batch size: replaces a symbolic or zero batch dimension (default 1); `Some(b)`
    /// replaces a fixed one too.
    pub batch: Option<usize>,
    /// Decode initializer data into [`Weights`]. With `false` only the shapes are read
    /// (the returned `Weights` is empty), e.g. to list a large model's layers quickly or
    /// to read a shape-only export ([`super::ExportWeights::ShapesOnly`]).
    pub load_weights: bool,
    /// The graph's name; by default the file stem for [`import`], else the ONNX graph's
    /// name, else "onnx".
    pub name: Option<String>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions { batch: None, load_weights: true, name: None }
    }
}

/// Imports an `.onnx` file; see the [module docs](super).
pub fn import(path: &Path, batch: Option<usize>) -> Result<(Graph, Weights), OnnxError> {
    let data =
        std::fs::read(path).map_err(|e| OnnxError::Io { path: path.display().to_string(), msg: e.to_string() })?;
    let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).filter(|s| !s.is_empty());
    let opts = ImportOptions { batch, name, ..ImportOptions::default() };
    let dir = path.parent().unwrap_or(Path::new(""));
    decode(Bytes::from(data))
        .and_then(|mut m| {
            load_external_data(&mut m, dir)?;
            import_model(m, &opts)
        })
        .map_err(OnnxError::one_line)
}

/// Reads the initializers a file keeps in external data files (`torch.onnx.export(...,
/// dynamo=True)` writes `model.onnx.data` by default) into their `raw_data`. Each data file
/// is read once and the tensors alias its buffer. Locations are relative to the model's
/// folder and may not leave it (the ONNX rule), so a file cannot make us read elsewhere.
fn load_external_data(model: &mut ModelProto, dir: &Path) -> Result<(), OnnxError> {
    use std::collections::hash_map::Entry;
    use std::path::Component;
    let Some(g) = model.graph.as_mut() else { return Ok(()) };
    let mut files: HashMap<String, Bytes> = HashMap::new();
    for t in g.initializer.iter_mut().filter(|t| t.data_location == 1 || !t.external_data.is_empty()) {
        let (mut location, mut offset, mut length) = (None, 0usize, None);
        for kv in &t.external_data {
            let num = |v: &str| {
                v.parse::<usize>().map_err(|_| tensor_err(t, format!("external data {}='{v}' is not a size", kv.key)))
            };
            match kv.key.as_str() {
                "location" => location = Some(kv.value.clone()),
                "offset" => offset = num(&kv.value)?,
                "length" => length = Some(num(&kv.value)?),
                _ => {} // "checksum" and others do not change where the bytes are
            }
        }
        let loc = location.ok_or_else(|| tensor_err(t, "external data without a 'location'"))?;
        let inside = Path::new(&loc).components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
        if loc.is_empty() || !inside {
            return Err(tensor_err(
                t,
                format!("external data location '{loc}' must be a path inside the model's folder"),
            ));
        }
        let data = match files.entry(loc) {
            Entry::Occupied(e) => e.get().clone(),
            Entry::Vacant(e) => {
                let p = dir.join(e.key());
                let bytes = std::fs::read(&p)
                    .map_err(|err| tensor_err(t, format!("external data file {}: {err}", p.display())))?;
                e.insert(Bytes::from(bytes)).clone()
            }
        };
        let end = match length {
            Some(l) => offset.checked_add(l),
            None => Some(data.len()),
        };
        let Some(end) = end.filter(|&e| offset <= e && e <= data.len()) else {
            return Err(tensor_err(
                t,
                format!("external data offset {offset} length {length:?} outside its {}-byte file", data.len()),
            ));
        };
        t.raw_data = data.slice(offset..end);
        t.data_location = 0;
        t.external_data.clear();
    }
    Ok(())
}

/// Imports a model from its bytes; see the [module docs](super).
pub fn import_bytes(bytes: &[u8], batch: Option<usize>) -> Result<(Graph, Weights), OnnxError> {
    import_with(bytes, &ImportOptions { batch, ..ImportOptions::default() })
}

/// Imports a model from its bytes with explicit [`ImportOptions`].
pub fn import_with(bytes: &[u8], opts: &ImportOptions) -> Result<(Graph, Weights), OnnxError> {
    decode(bytes).and_then(|m| import_model(m, opts)).map_err(OnnxError::one_line)
}

fn decode(buf: impl bytes::Buf) -> Result<ModelProto, OnnxError> {
    if !buf.has_remaining() {
        return Err(OnnxError::NotOnnx("the file is empty".into()));
    }
    ModelProto::decode(buf).map_err(|e| {
        let text = e.to_string();
        let text = text.strip_prefix("failed to decode Protobuf message: ").unwrap_or(&text);
        OnnxError::NotOnnx(format!("protobuf decode error at {}", text.replace(['\n', '\r'], " ")))
    })
}

fn import_model(model: ModelProto, opts: &ImportOptions) -> Result<(Graph, Weights), OnnxError> {
    let graph = model.graph.as_ref().ok_or(OnnxError::NoGraph)?;
    // The default domain's opset; absent means "recent" (13+ semantics).
    let opset = model
        .opset_import
        .iter()
        .filter(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .max()
        .unwrap_or(17);
    let name = opts
        .name
        .clone()
        .or_else(|| Some(one_line(graph.name.clone())).filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "onnx".to_string());
    Importer::run(graph, opset, opts, &name)
}

// ---- Tensors -------------------------------------------------------------------------

fn tensor_err(t: &TensorProto, msg: impl Into<String>) -> OnnxError {
    OnnxError::Tensor { name: t.name.clone(), msg: msg.into() }
}

/// Dims as `usize`, checked non-negative with an element count within [`MAX_ELEMENTS`].
fn dims_of(t: &TensorProto) -> Result<Vec<usize>, OnnxError> {
    let mut total: usize = 1;
    let mut out = Vec::with_capacity(t.dims.len());
    for &d in &t.dims {
        let d = usize::try_from(d).map_err(|_| tensor_err(t, format!("negative dimension in {:?}", t.dims)))?;
        total = total.saturating_mul(d);
        out.push(d);
    }
    if total > MAX_ELEMENTS || out.iter().any(|&d| d > MAX_ELEMENTS) {
        return Err(tensor_err(t, format!("dims {:?} exceed {MAX_ELEMENTS} elements", t.dims)));
    }
    Ok(out)
}

fn numel(dims: &[usize]) -> usize {
    dims.iter().product()
}

fn check_count(t: &TensorProto, got: usize, want: usize, field: &str) -> Result<(), OnnxError> {
    if got == want {
        Ok(())
    } else {
        Err(tensor_err(t, format!("{field} holds {got} values, its dims {:?} need {want}", t.dims)))
    }
}

fn type_name(dt: i32) -> String {
    match dt {
        data_type::FLOAT => "float32".into(),
        data_type::INT32 => "int32".into(),
        data_type::INT64 => "int64".into(),
        data_type::FLOAT16 => "float16".into(),
        data_type::DOUBLE => "float64".into(),
        data_type::BFLOAT16 => "bfloat16".into(),
        BOOL => "bool".into(),
        data_type::UNDEFINED => "undefined".into(),
        other => format!("data type {other}"),
    }
}

fn check_location(t: &TensorProto) -> Result<(), OnnxError> {
    if t.data_location == 1 || !t.external_data.is_empty() {
        // Only [`import`] knows the model's folder, where the data file is.
        return Err(tensor_err(
            t,
            "data stored in an external file (external data) is unsupported here; import the .onnx file by path",
        ));
    }
    Ok(())
}

/// Little-endian `raw_data` split into `W`-byte words, checked against the element count.
fn raw_words<const W: usize>(t: &TensorProto, n: usize) -> Result<impl Iterator<Item = [u8; W]> + '_, OnnxError> {
    if t.raw_data.len() != n.saturating_mul(W) {
        return Err(tensor_err(
            t,
            format!("raw_data has {} bytes, its dims {:?} need {}", t.raw_data.len(), t.dims, n.saturating_mul(W)),
        ));
    }
    Ok(t.raw_data.chunks_exact(W).map(|c| {
        let mut a = [0u8; W];
        a.copy_from_slice(c);
        a
    }))
}

/// A floating-point tensor's values as f32 (float16/bfloat16/float64 converted).
fn floats(t: &TensorProto) -> Result<Vec<f32>, OnnxError> {
    check_location(t)?;
    let n = numel(&dims_of(t)?);
    let raw = !t.raw_data.is_empty();
    let half16 = |bits: u16, bf: bool| {
        if bf {
            half::bf16::from_bits(bits).to_f32()
        } else {
            half::f16::from_bits(bits).to_f32()
        }
    };
    match t.data_type {
        data_type::FLOAT if raw => Ok(raw_words::<4>(t, n)?.map(f32::from_le_bytes).collect()),
        data_type::FLOAT => {
            check_count(t, t.float_data.len(), n, "float_data")?;
            Ok(t.float_data.clone())
        }
        dt @ (data_type::FLOAT16 | data_type::BFLOAT16) => {
            let bf = dt == data_type::BFLOAT16;
            if raw {
                Ok(raw_words::<2>(t, n)?.map(|b| half16(u16::from_le_bytes(b), bf)).collect())
            } else {
                check_count(t, t.int32_data.len(), n, "int32_data")?;
                Ok(t.int32_data.iter().map(|&v| half16(v as u16, bf)).collect())
            }
        }
        data_type::DOUBLE if raw => Ok(raw_words::<8>(t, n)?.map(|b| f64::from_le_bytes(b) as f32).collect()),
        data_type::DOUBLE => {
            check_count(t, t.double_data.len(), n, "double_data")?;
            Ok(t.double_data.iter().map(|&v| v as f32).collect())
        }
        dt => Err(tensor_err(t, format!("{} values where a floating-point tensor is needed", type_name(dt)))),
    }
}

/// `TensorProto.DataType` BOOL.
const BOOL: i32 = 9;

/// An integer (or boolean) tensor's values (shapes, axes, flags).
fn ints(t: &TensorProto) -> Result<Vec<i64>, OnnxError> {
    check_location(t)?;
    let n = numel(&dims_of(t)?);
    let raw = !t.raw_data.is_empty();
    match t.data_type {
        data_type::INT64 if raw => Ok(raw_words::<8>(t, n)?.map(i64::from_le_bytes).collect()),
        data_type::INT64 => {
            check_count(t, t.int64_data.len(), n, "int64_data")?;
            Ok(t.int64_data.clone())
        }
        data_type::INT32 if raw => Ok(raw_words::<4>(t, n)?.map(|b| i32::from_le_bytes(b) as i64).collect()),
        data_type::INT32 | BOOL if !raw => {
            check_count(t, t.int32_data.len(), n, "int32_data")?;
            Ok(t.int32_data.iter().map(|&v| v as i64).collect())
        }
        // Dropout's training_mode.
        BOOL => Ok(raw_words::<1>(t, n)?.map(|[b]| b as i64).collect()),
        dt => Err(tensor_err(t, format!("{} values where an integer tensor is needed", type_name(dt)))),
    }
}

/// `[rows, cols]` row-major → `[cols, rows]`.
fn transpose(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; data.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = data[r * cols + c];
        }
    }
    out
}

/// An initializer (borrowed from the model) or a constant made at import.
#[derive(Clone)]
enum Const<'m> {
    Init(&'m TensorProto),
    Owned(Rc<TensorProto>),
}

impl Deref for Const<'_> {
    type Target = TensorProto;
    fn deref(&self) -> &TensorProto {
        match self {
            Const::Init(t) => t,
            Const::Owned(t) => t,
        }
    }
}

// ---- Attributes and errors -------------------------------------------------------------

/// The node being imported, for error messages.
struct Cx {
    op: String,
    node: String,
}

fn attr_type_name(t: i32) -> &'static str {
    match t {
        attr_type::FLOAT => "FLOAT",
        attr_type::INT => "INT",
        attr_type::STRING => "STRING",
        attr_type::TENSOR => "TENSOR",
        attr_type::FLOATS => "FLOATS",
        attr_type::INTS => "INTS",
        _ => "another type",
    }
}

impl Cx {
    fn err(&self, msg: impl Into<String>) -> OnnxError {
        OnnxError::Node { op: self.op.clone(), node: self.node.clone(), msg: msg.into() }
    }

    fn unsupported(&self, attr: &str, value: impl Into<String>, hint: impl Into<String>) -> OnnxError {
        let hint = hint.into();
        OnnxError::UnsupportedAttr {
            op: self.op.clone(),
            node: self.node.clone(),
            attr: attr.to_string(),
            value: value.into(),
            hint: if hint.is_empty() { hint } else { format!("; {hint}") },
        }
    }

    fn shape(&self) -> impl FnOnce(OpError) -> OnnxError + '_ {
        move |source| OnnxError::Shape { op: self.op.clone(), node: self.node.clone(), source }
    }

    fn tensor(&self) -> impl FnOnce(OnnxError) -> OnnxError + '_ {
        move |e| match e {
            OnnxError::Tensor { name, msg } => self.err(format!("tensor '{name}': {msg}")),
            e => e,
        }
    }

    fn find<'n>(&self, n: &'n NodeProto, name: &str, want: i32) -> Result<Option<&'n AttributeProto>, OnnxError> {
        match n.attribute.iter().find(|a| a.name == name) {
            Some(a) if a.r#type != want && a.r#type != attr_type::UNDEFINED => Err(self.err(format!(
                "attribute '{name}' has type {}, expected {}",
                attr_type_name(a.r#type),
                attr_type_name(want)
            ))),
            a => Ok(a),
        }
    }

    fn int(&self, n: &NodeProto, name: &str, default: i64) -> Result<i64, OnnxError> {
        Ok(self.find(n, name, attr_type::INT)?.map_or(default, |a| a.i))
    }

    fn float(&self, n: &NodeProto, name: &str, default: f32) -> Result<f32, OnnxError> {
        Ok(self.find(n, name, attr_type::FLOAT)?.map_or(default, |a| a.f))
    }

    fn string(&self, n: &NodeProto, name: &str, default: &str) -> Result<String, OnnxError> {
        Ok(self
            .find(n, name, attr_type::STRING)?
            .map_or_else(|| default.to_string(), |a| String::from_utf8_lossy(&a.s).into_owned()))
    }

    fn ints(&self, n: &NodeProto, name: &str) -> Result<Option<Vec<i64>>, OnnxError> {
        Ok(self.find(n, name, attr_type::INTS)?.map(|a| a.ints.clone()))
    }

    /// A boolean flag attribute (0 or 1).
    fn flag(&self, n: &NodeProto, name: &str, default: bool) -> Result<bool, OnnxError> {
        match self.int(n, name, default as i64)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(self.unsupported(name, v.to_string(), "expected 0 or 1")),
        }
    }

    /// An integer-list attribute of exactly `len` values in `[min, MAX_ATTR]`.
    fn sizes(
        &self,
        n: &NodeProto,
        name: &str,
        len: usize,
        min: usize,
        default: &[usize],
    ) -> Result<Vec<usize>, OnnxError> {
        let Some(v) = self.ints(n, name)? else { return Ok(default.to_vec()) };
        if v.len() != len {
            return Err(self.unsupported(name, format!("{v:?}"), format!("expected {len} values (2-D only)")));
        }
        v.iter()
            .map(|&x| match usize::try_from(x) {
                Ok(x) if (min..=MAX_ATTR).contains(&x) => Ok(x),
                _ => Err(self.unsupported(name, format!("{v:?}"), format!("values must be in {min}..={MAX_ATTR}"))),
            })
            .collect()
    }
}

// ---- The importer ----------------------------------------------------------------------

/// An activation value: a graph tensor and its ONNX rank (4 for `[n, c, h, w]`, 2 for
/// `[n, features]`, which the graph stores as `[n, features, 1, 1]`).
#[derive(Clone, Copy, Debug)]
struct Val {
    t: TensorId,
    rank: usize,
}

struct Importer<'m> {
    g: &'m GraphProto,
    opset: i64,
    load: bool,
    inits: HashMap<&'m str, &'m TensorProto>,
    consts: HashMap<String, Rc<TensorProto>>,
    acts: HashMap<String, Val>,
    /// Per value name, how many node input slots read it.
    readers: HashMap<&'m str, Vec<usize>>,
    graph_outputs: HashSet<&'m str>,
    /// Nodes already absorbed into an earlier layer, with the value their output becomes.
    folded: HashMap<usize, Val>,
    names: Vec<String>,
    used: HashSet<String>,
    /// The fixed batch the file was exported with, if any (Reshape targets may spell it).
    file_batch: Option<usize>,
    b: Builder,
    weights: HashMap<String, Vec<f32>>,
}

fn is_default_domain(d: &str) -> bool {
    d.is_empty() || d == "ai.onnx"
}

/// The graph input (the one that is not an initializer) and its dims.
fn input_dims<'m>(
    g: &'m GraphProto,
    inits: &HashMap<&str, &TensorProto>,
    batch: Option<usize>,
) -> Result<(&'m str, Dims, usize, Option<usize>), OnnxError> {
    let inputs: Vec<_> = g.input.iter().filter(|v| !inits.contains_key(v.name.as_str())).collect();
    let vi = match inputs.as_slice() {
        [one] => *one,
        [] => return Err(OnnxError::Model("the graph has no input (every input is an initializer)".into())),
        many => {
            let names: Vec<_> = many.iter().map(|v| format!("'{}'", v.name)).collect();
            return Err(OnnxError::Model(format!(
                "the graph has {} inputs ({}); only single-input models are supported",
                many.len(),
                names.join(", ")
            )));
        }
    };
    let bad = |msg: String| OnnxError::Model(format!("input '{}': {msg}", vi.name));
    let Some(type_proto::Value::TensorType(tt)) = vi.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
        return Err(bad("not a tensor".into()));
    };
    if !matches!(tt.elem_type, data_type::FLOAT | data_type::FLOAT16 | data_type::BFLOAT16 | data_type::DOUBLE) {
        return Err(bad(format!("element type {} unsupported; expected a float tensor", type_name(tt.elem_type))));
    }
    let shape = tt.shape.as_ref().ok_or_else(|| bad("has no shape".into()))?;
    let rank = shape.dim.len();
    if rank != 4 && rank != 2 {
        return Err(bad(format!("rank {rank} unsupported; expected [N, C, H, W] or [N, features]")));
    }
    let mut d = [1usize; 4];
    let mut file_batch = None;
    for (i, dim) in shape.dim.iter().enumerate() {
        let fixed = match &dim.value {
            Some(dimension::Value::DimValue(v)) if *v > 0 => Some(*v),
            Some(dimension::Value::DimValue(v)) if *v < 0 => return Err(bad(format!("negative dimension {v}"))),
            _ => None,
        };
        if i == 0 {
            file_batch = fixed.and_then(|v| usize::try_from(v).ok());
            continue;
        }
        let what = match &dim.value {
            Some(dimension::Value::DimParam(p)) => format!("symbolic dimension '{p}'"),
            _ => "an unknown dimension".into(),
        };
        let v = fixed.ok_or_else(|| bad(format!("{what} at axis {i}; only the batch dimension may be symbolic")))?;
        d[i] = usize::try_from(v)
            .ok()
            .filter(|&v| v <= MAX_ELEMENTS)
            .ok_or_else(|| bad(format!("dimension {v} too large")))?;
    }
    let n = batch.or(file_batch).unwrap_or(1);
    if n == 0 || n > MAX_ATTR {
        return Err(OnnxError::Model(format!("batch size {n} out of range 1..={MAX_ATTR}")));
    }
    d[0] = n;
    if d.iter().try_fold(1usize, |a, &x| a.checked_mul(x)).is_none_or(|t| t > MAX_ELEMENTS) {
        return Err(bad(format!("{d:?} exceeds {MAX_ELEMENTS} elements")));
    }
    Ok((&vi.name, d, rank, file_batch))
}

/// Node names: the ONNX name when present, unique and printable, else `{op_type}_{index}`.
fn node_names(g: &GraphProto) -> (Vec<String>, HashSet<String>) {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for n in &g.node {
        let name = if n.name.chars().any(char::is_control) { "" } else { n.name.as_str() };
        *count.entry(name).or_default() += 1;
    }
    let keep = |n: &NodeProto| count.get(n.name.as_str()).is_some_and(|&c| c == 1) && !n.name.is_empty();
    let mut used: HashSet<String> = g.node.iter().filter(|n| keep(n)).map(|n| n.name.clone()).collect();
    let names = g
        .node
        .iter()
        .enumerate()
        .map(|(i, n)| {
            if keep(n) {
                return n.name.clone();
            }
            let base = format!("{}_{i}", one_line(n.op_type.clone()));
            let mut name = base.clone();
            let mut k = 1;
            while used.contains(&name) {
                name = format!("{base}_{k}");
                k += 1;
            }
            used.insert(name.clone());
            name
        })
        .collect();
    (names, used)
}

/// The attributes each supported operator may carry, in every opset from 1 on (legacy ones
/// such as `consumed_inputs` or `is_test` included: they do not change inference). Anything
/// else is an error rather than silently ignored, since it might change the result.
fn known_attrs(op: &str) -> &'static [&'static str] {
    const POOL: &[&str] = &[
        "auto_pad",
        "ceil_mode",
        "count_include_pad",
        "dilations",
        "kernel_shape",
        "pads",
        "storage_order",
        "strides",
    ];
    match op {
        "Add" => &["axis", "broadcast", "consumed_inputs"],
        "AveragePool" | "MaxPool" => POOL,
        "BatchNormalization" => &["consumed_inputs", "epsilon", "is_test", "momentum", "spatial", "training_mode"],
        "Clip" => &["consumed_inputs", "max", "min"],
        "Concat" | "Flatten" | "Softmax" => &["axis"],
        "Constant" => &["sparse_value", "value", "value_float", "value_floats", "value_int", "value_ints"],
        "Conv" => &["auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"],
        "Dropout" => &["consumed_inputs", "is_test", "ratio", "seed"],
        "Gemm" => &["alpha", "beta", "broadcast", "transA", "transB"],
        "LRN" => &["alpha", "beta", "bias", "size"],
        "ReduceMean" => &["axes", "keepdims", "noop_with_empty_axes"],
        "Relu" | "Sigmoid" | "Tanh" => &["consumed_inputs"],
        "Reshape" => &["allowzero", "consumed_inputs", "shape"],
        "Transpose" => &["perm"],
        _ => &[],
    }
}

/// An attribute value, briefly, for messages.
fn attr_value(a: &AttributeProto) -> String {
    match a.r#type {
        attr_type::FLOAT => a.f.to_string(),
        attr_type::INT => a.i.to_string(),
        attr_type::STRING => String::from_utf8_lossy(&a.s).chars().take(40).collect(),
        attr_type::FLOATS => format!("{:?}", &a.floats[..a.floats.len().min(8)]),
        attr_type::INTS => format!("{:?}", &a.ints[..a.ints.len().min(8)]),
        _ => format!("({})", attr_type_name(a.r#type)),
    }
}

fn check_attr_names(cx: &Cx, n: &NodeProto) -> Result<(), OnnxError> {
    let known = known_attrs(&n.op_type);
    match n.attribute.iter().find(|a| !known.contains(&a.name.as_str())) {
        None => Ok(()),
        Some(a) => {
            let hint = if known.is_empty() {
                format!("{} takes no attributes", n.op_type)
            } else {
                format!("not a {} attribute (known: {})", n.op_type, known.join(", "))
            };
            Err(cx.unsupported(&a.name, attr_value(a), hint))
        }
    }
}

/// A `Constant` node's value as a tensor.
fn constant_value(cx: &Cx, n: &NodeProto) -> Result<TensorProto, OnnxError> {
    let a = n
        .attribute
        .first()
        .filter(|_| n.attribute.len() == 1)
        .ok_or_else(|| cx.err(format!("expected exactly one value attribute, found {}", n.attribute.len())))?;
    let t = match a.name.as_str() {
        "value" => a.t.clone().ok_or_else(|| cx.err("attribute 'value' holds no tensor"))?,
        "value_float" => TensorProto::f32_typed("", &[], &[a.f]),
        "value_floats" => TensorProto::f32_typed("", &[a.floats.len()], &a.floats),
        "value_int" => TensorProto::i64("", &[], &[a.i]),
        "value_ints" => TensorProto::i64("", &[a.ints.len()], &a.ints),
        other => {
            return Err(cx.unsupported(
                other,
                "(a sparse or string constant)",
                "expected value, value_float(s) or value_int(s)",
            ))
        }
    };
    Ok(TensorProto { name: n.output.first().cloned().unwrap_or_default(), ..t })
}

impl<'m> Importer<'m> {
    fn run(g: &'m GraphProto, opset: i64, opts: &ImportOptions, name: &str) -> Result<(Graph, Weights), OnnxError> {
        let inits: HashMap<&str, &TensorProto> = g.initializer.iter().map(|t| (t.name.as_str(), t)).collect();
        let (input_name, dims, rank, file_batch) = input_dims(g, &inits, opts.batch)?;
        let (b, x) = Builder::new(name, dims);
        let (names, used) = node_names(g);
        let mut readers: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, n) in g.node.iter().enumerate() {
            for v in n.input.iter().filter(|v| !v.is_empty()) {
                readers.entry(v.as_str()).or_default().push(i);
            }
        }
        let mut imp = Importer {
            g,
            opset,
            load: opts.load_weights,
            inits,
            consts: HashMap::new(),
            acts: HashMap::from([(input_name.to_string(), Val { t: x, rank })]),
            readers,
            graph_outputs: g.output.iter().map(|v| v.name.as_str()).collect(),
            folded: HashMap::new(),
            names,
            used,
            file_batch,
            b,
            weights: HashMap::new(),
        };
        // Constants have no inputs: evaluate them all first, so the lookahead folds (a
        // Conv's bias Add) see them wherever they sit in the node list.
        for (i, n) in g.node.iter().enumerate() {
            if n.op_type == "Constant" && is_default_domain(&n.domain) {
                let cx = imp.cx(i);
                let t = constant_value(&cx, n)?;
                imp.define_const(&cx, n, t)?;
            }
        }
        for i in 0..g.node.len() {
            imp.node(i)?;
        }
        imp.finish()
    }

    fn cx(&self, i: usize) -> Cx {
        Cx { op: self.g.node[i].op_type.clone(), node: self.names[i].clone() }
    }

    /// A fresh layer name derived from `base`.
    fn fresh(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        let mut k = 1;
        while self.used.contains(&name) {
            name = format!("{base}_{k}");
            k += 1;
        }
        self.used.insert(name.clone());
        name
    }

    fn is_defined(&self, v: &str) -> bool {
        self.acts.contains_key(v) || self.consts.contains_key(v) || self.inits.contains_key(v)
    }

    fn out_name<'n>(&self, cx: &Cx, n: &'n NodeProto) -> Result<&'n str, OnnxError> {
        match n.output.first().map(String::as_str) {
            Some(o) if !o.is_empty() => {
                if self.is_defined(o) {
                    return Err(cx.err(format!("output '{o}' is already defined")));
                }
                Ok(o)
            }
            _ => Err(cx.err("has no output")),
        }
    }

    fn define_const(&mut self, cx: &Cx, n: &NodeProto, t: TensorProto) -> Result<(), OnnxError> {
        let o = self.out_name(cx, n)?;
        self.consts.insert(o.to_string(), Rc::new(t));
        Ok(())
    }

    fn bind(&mut self, cx: &Cx, n: &NodeProto, v: Val) -> Result<(), OnnxError> {
        let o = self.out_name(cx, n)?;
        self.acts.insert(o.to_string(), v);
        Ok(())
    }

    fn constant(&self, v: &str) -> Option<Const<'m>> {
        if let Some(t) = self.consts.get(v) {
            return Some(Const::Owned(t.clone()));
        }
        self.inits.get(v).map(|t| Const::Init(t))
    }

    fn input_name(n: &NodeProto, i: usize) -> Option<&str> {
        n.input.get(i).map(String::as_str).filter(|s| !s.is_empty())
    }

    fn undefined(cx: &Cx, v: &str) -> OnnxError {
        cx.err(format!("input '{v}' is not produced by an earlier node, an initializer or the graph input"))
    }

    /// Input `i`, which must be an activation.
    fn act(&self, cx: &Cx, n: &NodeProto, i: usize) -> Result<Val, OnnxError> {
        let v = Self::input_name(n, i).ok_or_else(|| cx.err(format!("input {i} is missing")))?;
        if let Some(a) = self.acts.get(v) {
            return Ok(*a);
        }
        if self.constant(v).is_some() {
            return Err(cx.err(format!("input {i} '{v}' is a constant; only computed activations are supported there")));
        }
        Err(Self::undefined(cx, v))
    }

    /// Optional input `i`, which must be a constant (an initializer or `Constant`).
    fn opt_const(&self, cx: &Cx, n: &NodeProto, i: usize, what: &str) -> Result<Option<Const<'m>>, OnnxError> {
        let Some(v) = Self::input_name(n, i) else { return Ok(None) };
        if let Some(c) = self.constant(v) {
            return Ok(Some(c));
        }
        if self.acts.contains_key(v) {
            return Err(
                cx.err(format!("{what} '{v}' is computed at run time; it must be an initializer or a Constant"))
            );
        }
        Err(Self::undefined(cx, v))
    }

    fn req_const(&self, cx: &Cx, n: &NodeProto, i: usize, what: &str) -> Result<Const<'m>, OnnxError> {
        self.opt_const(cx, n, i, what)?.ok_or_else(|| cx.err(format!("{what} (input {i}) is missing")))
    }

    /// Weight data when loading weights (`None` otherwise).
    fn data(&self, cx: &Cx, t: &TensorProto) -> Result<Option<Vec<f32>>, OnnxError> {
        if self.load {
            floats(t).map(Some).map_err(cx.tensor())
        } else {
            Ok(None)
        }
    }

    fn put(&mut self, name: String, data: Option<Vec<f32>>) {
        if let Some(d) = data {
            self.weights.insert(name, d);
        }
    }

    fn dims(&self, v: Val) -> Dims {
        self.b.dims(v.t)
    }

    /// Bounds a new layer's output size and work (`per_out` taps per output element).
    fn check_size(&self, cx: &Cx, y: TensorId, per_out: u64) -> Result<(), OnnxError> {
        let d = self.b.dims(y);
        let n = d.iter().fold(1u64, |a, &x| a.saturating_mul(x as u64));
        if n > MAX_ELEMENTS as u64 || n.saturating_mul(per_out.max(1)) > MAX_WORK {
            return Err(cx.err(format!("output {d:?} is too large to model")));
        }
        Ok(())
    }

    /// Outputs beyond the first (Dropout's mask, MaxPool's indices, BatchNormalization's
    /// training statistics) must be unused.
    fn check_extra_outputs(&self, cx: &Cx, n: &NodeProto) -> Result<(), OnnxError> {
        for (i, o) in n.output.iter().enumerate().skip(1).filter(|(_, o)| !o.is_empty()) {
            if self.readers.contains_key(o.as_str()) || self.graph_outputs.contains(o.as_str()) {
                return Err(cx.err(format!("output {i} '{o}' is used; only the first output is supported")));
            }
        }
        Ok(())
    }

    fn node(&mut self, idx: usize) -> Result<(), OnnxError> {
        let g = self.g;
        let n = &g.node[idx];
        let cx = self.cx(idx);
        if let Some(v) = self.folded.remove(&idx) {
            return self.bind(&cx, n, v);
        }
        if !is_default_domain(&n.domain) {
            return Err(OnnxError::UnsupportedOp {
                op: n.op_type.clone(),
                node: cx.node,
                domain: format!(" in domain '{}'", n.domain),
            });
        }
        if SUPPORTED_OPS.contains(&n.op_type.as_str()) {
            self.check_extra_outputs(&cx, n)?;
            check_attr_names(&cx, n)?;
        }
        let name = cx.node.clone();
        match n.op_type.as_str() {
            "Constant" => Ok(()),
            "Conv" => self.conv(&cx, idx, n, &name),
            "Gemm" | "MatMul" => self.linear(&cx, idx, n, &name),
            "Relu" | "Clip" | "Sigmoid" | "Tanh" => {
                let x = self.act(&cx, n, 0)?;
                let a = self.activation(&cx, n)?;
                let y = self.b.act(x.t, &name, a).map_err(cx.shape())?;
                self.bind(&cx, n, Val { t: y, ..x })
            }
            "Add" => self.add(&cx, n, &name),
            "MaxPool" | "AveragePool" => self.pool(&cx, n, &name),
            "GlobalAveragePool" | "GlobalMaxPool" => {
                let x = self.act4(&cx, n)?;
                let [_, _, h, w] = self.dims(x);
                let p = if n.op_type == "GlobalMaxPool" {
                    Pool2d::max(0, 0, 0, 0, h, w)
                } else {
                    Pool2d::global_avg(0, 0, 0, 0)
                };
                let y = self.b.pool(x.t, &name, p).map_err(cx.shape())?;
                self.check_size(&cx, y, (h * w) as u64)?;
                self.bind(&cx, n, Val { t: y, rank: 4 })
            }
            "BatchNormalization" => self.batch_norm(&cx, n, &name),
            "LRN" => {
                let x = self.act4(&cx, n)?;
                let size = cx.int(n, "size", 0)?;
                let size = usize::try_from(size)
                    .ok()
                    .filter(|s| (1..=MAX_ATTR).contains(s))
                    .ok_or_else(|| cx.unsupported("size", size.to_string(), format!("expected 1..={MAX_ATTR}")))?;
                let (alpha, beta, bias) =
                    (cx.float(n, "alpha", 1e-4)?, cx.float(n, "beta", 0.75)?, cx.float(n, "bias", 1.0)?);
                let y = self.b.lrn(x.t, &name, size, alpha, beta, bias).map_err(cx.shape())?;
                self.check_size(&cx, y, size as u64)?;
                self.bind(&cx, n, x_like(y, x))
            }
            "Softmax" => {
                let x = self.act(&cx, n, 0)?;
                let default = if self.opset >= 13 { -1 } else { 1 };
                let axis = cx.int(n, "axis", default)?;
                let [_, _, h, w] = self.dims(x);
                let ok = norm_axis(axis, x.rank) == Some(1) && (x.rank == 2 || self.opset >= 13 || h * w == 1);
                if !ok {
                    return Err(cx.unsupported(
                        "axis",
                        axis.to_string(),
                        format!("only softmax over the channel axis (1) of a rank-{} input", x.rank),
                    ));
                }
                let y = self.b.softmax(x.t, &name).map_err(cx.shape())?;
                self.bind(&cx, n, x_like(y, x))
            }
            "Concat" => self.concat(&cx, n, &name),
            "Flatten" => {
                let x = self.act(&cx, n, 0)?;
                let axis = cx.int(n, "axis", 1)?;
                if norm_axis(axis, x.rank) != Some(1) {
                    return Err(cx.unsupported("axis", axis.to_string(), "only axis 1 ([N, C*H*W])"));
                }
                let y = self.b.flatten(x.t, &name);
                self.bind(&cx, n, Val { t: y, rank: 2 })
            }
            "Reshape" => self.reshape(&cx, n, &name),
            "ReduceMean" => self.reduce_mean(&cx, n, &name),
            "Dropout" => {
                // Opset 12+: training_mode is an optional boolean input.
                if let Some(t) = self.opt_const(&cx, n, 2, "training_mode")? {
                    if ints(&t).map_err(cx.tensor())?.iter().any(|&v| v != 0) {
                        return Err(cx.unsupported("training_mode", "1", "inference only"));
                    }
                }
                let x = self.act(&cx, n, 0)?;
                let y = self.b.identity(x.t, &name);
                self.bind(&cx, n, x_like(y, x))
            }
            "Identity" => {
                let v = Self::input_name(n, 0).ok_or_else(|| cx.err("input 0 is missing"))?;
                if let Some(c) = self.constant(v) {
                    let t = TensorProto::clone(&c);
                    return self.define_const(&cx, n, t);
                }
                let x = self.act(&cx, n, 0)?;
                let y = self.b.identity(x.t, &name);
                self.bind(&cx, n, x_like(y, x))
            }
            "Transpose" => self.transpose(&cx, n),
            _ => Err(OnnxError::UnsupportedOp { op: n.op_type.clone(), node: cx.node, domain: String::new() }),
        }
    }

    /// Input 0 as a rank-4 activation.
    fn act4(&self, cx: &Cx, n: &NodeProto) -> Result<Val, OnnxError> {
        let x = self.act(cx, n, 0)?;
        if x.rank != 4 {
            return Err(cx.err(format!("expects an [N, C, H, W] input, got rank {} {:?}", x.rank, self.rank_dims(x))));
        }
        Ok(x)
    }

    /// A value's ONNX-rank dims, for messages.
    fn rank_dims(&self, x: Val) -> Vec<usize> {
        let d = self.dims(x);
        d[..x.rank].to_vec()
    }

    /// The activation a Relu/Clip/Sigmoid/Tanh node applies.
    fn activation(&self, cx: &Cx, n: &NodeProto) -> Result<Act, OnnxError> {
        Ok(match n.op_type.as_str() {
            "Relu" => Act::Relu,
            "Sigmoid" => Act::Sigmoid,
            "Tanh" => Act::Tanh,
            _ => {
                // Opset >= 11: min/max are optional inputs; before: attributes.
                let bound = |i: usize, attr: &str, default: f32| -> Result<f32, OnnxError> {
                    match self.opt_const(cx, n, i, attr)? {
                        Some(c) => {
                            let v = floats(&c).map_err(cx.tensor())?;
                            match v.as_slice() {
                                [x] => Ok(*x),
                                _ => Err(cx.err(format!("{attr} must be a scalar, got {} values", v.len()))),
                            }
                        }
                        None => cx.float(n, attr, default),
                    }
                };
                Act::Clip { min: bound(1, "min", f32::NEG_INFINITY)?, max: bound(2, "max", f32::INFINITY)? }
            }
        })
    }

    /// The single reader of `v`, if exactly one node reads it once and it is not a graph output.
    fn only_reader(&self, v: &str) -> Option<usize> {
        match self.readers.get(v).map(Vec::as_slice) {
            Some(&[r]) if !self.graph_outputs.contains(v) => Some(r),
            _ => None,
        }
    }

    /// If the output of node `idx` (a layer with `c` output channels/features at ONNX
    /// rank `rank`) is read only by an `Add` of a per-channel constant, that Add's index
    /// and constant: it can become the layer's bias.
    fn bias_add(&self, idx: usize, rank: usize, c: usize) -> Option<(usize, Const<'m>)> {
        let out = self.g.node[idx].output.first()?;
        let r = self.only_reader(out)?;
        let add = &self.g.node[r];
        if add.op_type != "Add" || !is_default_domain(&add.domain) || add.input.len() != 2 || add.output.len() != 1 {
            return None;
        }
        let other = if add.input[0] == *out { &add.input[1] } else { &add.input[0] };
        let k = self.constant(other)?;
        let d = dims_of(&k).ok()?;
        let per_channel = match rank {
            4 => matches!(d.as_slice(), [x, 1, 1] | [1, x, 1, 1] if *x == c),
            _ => matches!(d.as_slice(), [x] | [1, x] if *x == c),
        };
        (per_channel || numel(&d) == 1).then_some((r, k))
    }

    /// `bias` (or zeros) plus a folded Add's constant (broadcast when a scalar).
    fn fold_bias(
        &self,
        cx: &Cx,
        bias: Option<Vec<f32>>,
        add: &TensorProto,
        c: usize,
    ) -> Result<Option<Vec<f32>>, OnnxError> {
        if !self.load {
            return Ok(None);
        }
        let k = floats(add).map_err(cx.tensor())?;
        let mut b = bias.unwrap_or_else(|| vec![0.0; c]);
        for (i, v) in b.iter_mut().enumerate() {
            *v += if k.len() == 1 { k[0] } else { k[i] };
        }
        Ok(Some(b))
    }

    fn conv(&mut self, cx: &Cx, idx: usize, n: &NodeProto, name: &str) -> Result<(), OnnxError> {
        let x = self.act4(cx, n)?;
        let w = self.req_const(cx, n, 1, "weight")?;
        let wd = dims_of(&w).map_err(cx.tensor())?;
        let &[m, cpg, kh, kw] = wd.as_slice() else {
            return Err(cx.err(format!("only 2-D convolution is supported; weight '{}' has dims {wd:?}", w.name)));
        };
        if kh > MAX_ATTR || kw > MAX_ATTR || wd.contains(&0) {
            return Err(cx.err(format!("weight dims {wd:?} unsupported")));
        }
        let groups = cx.int(n, "group", 1)?;
        let groups = usize::try_from(groups)
            .ok()
            .filter(|g| (1..=MAX_ATTR).contains(g))
            .ok_or_else(|| cx.unsupported("group", groups.to_string(), ""))?;
        let [_, c_in, h, wi] = self.dims(x);
        if cpg.saturating_mul(groups) != c_in {
            return Err(cx.err(format!(
                "weight dims {wd:?} with group {groups} expect {} input channels, the input has {c_in}",
                cpg.saturating_mul(groups)
            )));
        }
        let ks = cx.sizes(n, "kernel_shape", 2, 1, &[kh, kw])?;
        if ks != [kh, kw] {
            return Err(cx.unsupported("kernel_shape", format!("{ks:?}"), format!("the weight's kernel is {kh}x{kw}")));
        }
        let strides = cx.sizes(n, "strides", 2, 1, &[1, 1])?;
        let dil = cx.sizes(n, "dilations", 2, 1, &[1, 1])?;
        let pads = self.pads(cx, n, [h, wi], [kh, kw], &strides, &dil, false)?;
        let bias_t = self.opt_const(cx, n, 2, "bias")?;
        if let Some(b) = &bias_t {
            let bd = dims_of(b).map_err(cx.tensor())?;
            if numel(&bd) != m || bd.len() != 1 {
                return Err(cx.err(format!("bias '{}' has dims {bd:?}, expected [{m}]", b.name)));
            }
        }
        let fold = self.bias_add(idx, 4, m);
        let spec = Conv2d::new(0, 0, 0, 0, 0, kh, kw)
            .with_stride(strides[0], strides[1])
            .with_pads(pads[0], pads[1], pads[2], pads[3])
            .with_dilation(dil[0], dil[1])
            .with_groups(groups);
        let has_bias = bias_t.is_some() || fold.is_some();
        let wdata = self.data(cx, &w)?;
        let mut bdata = match &bias_t {
            Some(b) => self.data(cx, b)?,
            None => None,
        };
        if let Some((_, k)) = &fold {
            bdata = self.fold_bias(cx, bdata, k, m)?;
        }
        let y = self.b.conv(x.t, name, m, spec, has_bias).map_err(cx.shape())?;
        self.check_size(cx, y, (cpg * kh * kw) as u64)?;
        self.put(format!("{name}.weight"), wdata);
        if has_bias {
            self.put(format!("{name}.bias"), bdata);
        }
        let v = Val { t: y, rank: 4 };
        if let Some((r, _)) = fold {
            self.folded.insert(r, v);
        }
        self.bind(cx, n, v)
    }

    /// Pads `[top, left, bottom, right]` from `pads`/`auto_pad`.
    #[allow(clippy::too_many_arguments)]
    fn pads(
        &self,
        cx: &Cx,
        n: &NodeProto,
        input: [usize; 2],
        k: [usize; 2],
        strides: &[usize],
        dil: &[usize],
        ceil: bool,
    ) -> Result<[usize; 4], OnnxError> {
        let auto = cx.string(n, "auto_pad", "NOTSET")?;
        match auto.as_str() {
            "NOTSET" | "" => {
                let p = cx.sizes(n, "pads", 4, 0, &[0, 0, 0, 0])?;
                Ok([p[0], p[1], p[2], p[3]])
            }
            "VALID" => Ok([0; 4]),
            "SAME_UPPER" | "SAME_LOWER" => {
                if ceil {
                    return Err(cx.unsupported("auto_pad", format!("{auto} with ceil_mode=1"), "use explicit pads"));
                }
                // Output = ceil(in / stride); the padding that achieves it, the odd
                // element at the end (UPPER) or the beginning (LOWER).
                let mut p = [0; 4];
                for a in 0..2 {
                    let out = input[a].div_ceil(strides[a]);
                    let eff = dil[a] * (k[a] - 1) + 1;
                    let total = ((out - 1) * strides[a] + eff).saturating_sub(input[a]);
                    let (lo, hi) = if auto == "SAME_UPPER" {
                        (total / 2, total - total / 2)
                    } else {
                        (total - total / 2, total / 2)
                    };
                    p[a] = lo;
                    p[a + 2] = hi;
                }
                Ok(p)
            }
            other => Err(cx.unsupported("auto_pad", other, "expected NOTSET, VALID, SAME_UPPER or SAME_LOWER")),
        }
    }

    fn pool(&mut self, cx: &Cx, n: &NodeProto, name: &str) -> Result<(), OnnxError> {
        let x = self.act4(cx, n)?;
        let [_, _, h, w] = self.dims(x);
        let k = cx.sizes(n, "kernel_shape", 2, 1, &[])?;
        if k.is_empty() {
            return Err(cx.err("attribute 'kernel_shape' is missing"));
        }
        let strides = cx.sizes(n, "strides", 2, 1, &[1, 1])?;
        let dil = cx.sizes(n, "dilations", 2, 1, &[1, 1])?;
        let ceil = cx.flag(n, "ceil_mode", false)?;
        let p = self.pads(cx, n, [h, w], [k[0], k[1]], &strides, &dil, ceil)?;
        let max = n.op_type == "MaxPool";
        let cip = if max { false } else { cx.flag(n, "count_include_pad", false)? };
        if k == [1, 1] && strides == [1, 1] && dil == [1, 1] && p == [0; 4] {
            let y = self.b.identity(x.t, name);
            return self.bind(cx, n, x_like(y, x));
        }
        let spec = if max { Pool2d::max(0, 0, 0, 0, k[0], k[1]) } else { Pool2d::avg(0, 0, 0, 0, k[0], k[1], cip) };
        let spec = spec
            .with_stride(strides[0], strides[1])
            .with_pads(p[0], p[1], p[2], p[3])
            .with_dilation(dil[0], dil[1])
            .with_ceil_mode(ceil);
        let y = self.b.pool(x.t, name, spec).map_err(cx.shape())?;
        self.check_size(cx, y, (k[0] * k[1]) as u64)?;
        self.bind(cx, n, Val { t: y, rank: 4 })
    }

    fn batch_norm(&mut self, cx: &Cx, n: &NodeProto, name: &str) -> Result<(), OnnxError> {
        let x = self.act(cx, n, 0)?;
        if cx.flag(n, "training_mode", false)? {
            return Err(cx.unsupported("training_mode", "1", "inference only"));
        }
        if self.opset < 9 && cx.int(n, "spatial", 1)? != 1 {
            return Err(cx.unsupported("spatial", "0", "per-channel statistics only"));
        }
        let eps = cx.float(n, "epsilon", 1e-5)?;
        let c = self.dims(x)[1];
        let mut data = Vec::with_capacity(4);
        for (i, what) in [(1, "scale"), (2, "B"), (3, "mean"), (4, "var")] {
            let t = self.req_const(cx, n, i, what)?;
            let d = dims_of(&t).map_err(cx.tensor())?;
            if d != [c] {
                return Err(cx.err(format!("{what} '{}' has dims {d:?}, expected [{c}]", t.name)));
            }
            data.push(self.data(cx, &t)?);
        }
        let y = self.b.batch_norm(x.t, name, eps).map_err(cx.shape())?;
        for (suffix, d) in ["weight", "bias", "running_mean", "running_var"].into_iter().zip(data) {
            self.put(format!("{name}.{suffix}"), d);
        }
        self.bind(cx, n, x_like(y, x))
    }

    /// Gemm and MatMul with a constant B → linear layer `[out, in]`.
    fn linear(&mut self, cx: &Cx, idx: usize, n: &NodeProto, name: &str) -> Result<(), OnnxError> {
        let gemm = n.op_type == "Gemm";
        if !gemm {
            let a_const = Self::input_name(n, 0).is_some_and(|v| self.constant(v).is_some());
            let b_act = Self::input_name(n, 1).is_some_and(|v| self.acts.contains_key(v));
            if a_const || b_act {
                return Err(
                    cx.err("only activation × constant matrix products are supported (B must be an initializer)")
                );
            }
        }
        let x = self.act(cx, n, 0)?;
        if x.rank != 2 {
            return Err(cx.err(format!("expects a 2-D input [N, K] (flatten first), got {:?}", self.rank_dims(x))));
        }
        let k = self.dims(x)[1];
        let (trans_b, alpha, beta) = if gemm {
            if cx.flag(n, "transA", false)? {
                return Err(cx.unsupported("transA", "1", "A must be the [N, K] activation"));
            }
            (cx.flag(n, "transB", false)?, cx.float(n, "alpha", 1.0)?, cx.float(n, "beta", 1.0)?)
        } else {
            (false, 1.0, 1.0)
        };
        let bt = self.req_const(cx, n, 1, "B")?;
        let bd = dims_of(&bt).map_err(cx.tensor())?;
        let &[r, c] = bd.as_slice() else {
            return Err(cx.err(format!("B '{}' has dims {bd:?}; expected a 2-D matrix", bt.name)));
        };
        let (out, kb) = if trans_b { (r, c) } else { (c, r) };
        if kb != k || out == 0 {
            return Err(cx.err(format!(
                "B '{}' has dims {bd:?} (transB={}), which does not match the input's {k} features",
                bt.name, trans_b as u8
            )));
        }
        let mut wdata = self.data(cx, &bt)?;
        if let Some(w) = &mut wdata {
            if !trans_b {
                *w = transpose(w, r, c);
            }
            if alpha != 1.0 {
                w.iter_mut().for_each(|v| *v *= alpha);
            }
        }
        let c_t = if gemm && beta != 0.0 { self.opt_const(cx, n, 2, "C")? } else { None };
        let mut bdata = None;
        if let Some(ct) = &c_t {
            let cd = dims_of(ct).map_err(cx.tensor())?;
            let per_col = matches!(cd.as_slice(), [x] | [1, x] if *x == out);
            if !(per_col || numel(&cd) == 1) {
                return Err(
                    cx.err(format!("C '{}' has dims {cd:?}; only a per-output bias [{out}] is supported", ct.name))
                );
            }
            bdata = self.data(cx, ct)?.map(|v| {
                let s = |x: f32| x * beta;
                if v.len() == 1 {
                    vec![s(v[0]); out]
                } else {
                    v.into_iter().map(s).collect()
                }
            });
        }
        let fold = self.bias_add(idx, 2, out);
        if let Some((_, kt)) = &fold {
            bdata = self.fold_bias(cx, bdata, kt, out)?;
        }
        let has_bias = c_t.is_some() || fold.is_some();
        let y = self.b.linear(x.t, name, out, has_bias).map_err(cx.shape())?;
        self.check_size(cx, y, k as u64)?;
        self.put(format!("{name}.weight"), wdata);
        if has_bias {
            self.put(format!("{name}.bias"), bdata);
        }
        let v = Val { t: y, rank: 2 };
        if let Some((r, _)) = fold {
            self.folded.insert(r, v);
        }
        self.bind(cx, n, v)
    }

    fn add(&mut self, cx: &Cx, n: &NodeProto, name: &str) -> Result<(), OnnxError> {
        let consts = (0..2).filter(|&i| Self::input_name(n, i).is_some_and(|v| self.constant(v).is_some())).count();
        if consts > 0 {
            return Err(cx.err(
                "adding a constant is only supported as the bias of the Conv, Gemm or MatMul producing the other operand \
                 (when nothing else reads that layer's output)",
            ));
        }
        let (a, b) = (self.act(cx, n, 0)?, self.act(cx, n, 1)?);
        if a.rank != b.rank {
            return Err(cx.err(format!("operand shapes {:?} and {:?} differ", self.rank_dims(a), self.rank_dims(b))));
        }
        // Fuse a following activation that is the sum's only reader.
        let fuse = n.output.first().and_then(|o| self.only_reader(o)).and_then(|r| {
            let rn = &self.g.node[r];
            let act_op = matches!(rn.op_type.as_str(), "Relu" | "Clip" | "Sigmoid" | "Tanh");
            if !act_op || !is_default_domain(&rn.domain) || rn.output.len() != 1 {
                return None;
            }
            let a = self.activation(&self.cx(r), rn).ok()?;
            a.validate().ok().map(|_| (r, a))
        });
        let act = fuse.map_or(Act::None, |(_, a)| a);
        let y = self.b.add(a.t, b.t, name, act).map_err(cx.shape())?;
        let v = x_like(y, a);
        if let Some((r, _)) = fuse {
            self.folded.insert(r, v);
        }
        self.bind(cx, n, v)
    }

    fn concat(&mut self, cx: &Cx, n: &NodeProto, name: &str) -> Result<(), OnnxError> {
        if cx.find(n, "axis", attr_type::INT)?.is_none() {
            return Err(cx.err("attribute 'axis' is missing"));
        }
        let axis = cx.int(n, "axis", 1)?;
        let mut xs = Vec::with_capacity(n.input.len());
        for i in 0..n.input.len() {
            xs.push(self.act(cx, n, i)?);
        }
        let Some(first) = xs.first().copied() else { return Err(cx.err("has no inputs")) };
        if xs.iter().any(|x| x.rank != first.rank) {
            return Err(cx.err("inputs have different ranks"));
        }
        if norm_axis(axis, first.rank) != Some(1) {
            return Err(cx.unsupported("axis", axis.to_string(), "only channel concatenation (axis 1)"));
        }
        let channels = xs.iter().fold(0usize, |a, &x| a.saturating_add(self.dims(x)[1]));
        if channels > MAX_ELEMENTS {
            return Err(cx.err("too many channels"));
        }
        let ts: Vec<TensorId> = xs.iter().map(|x| x.t).collect();
        let y = self.b.concat(&ts, name).map_err(cx.shape())?;
        self.check_size(cx, y, 1)?;
        self.bind(cx, n, x_like(y, first))
    }

    fn reshape(&mut self, cx: &Cx, n: &NodeProto, name: &str) -> Result<(), OnnxError> {
        let x = self.act(cx, n, 0)?;
        let st = self.req_const(cx, n, 1, "shape")?;
        let shape = ints(&st).map_err(cx.tensor())?;
        let allow_zero = cx.flag(n, "allowzero", false)?;
        let cur = self.rank_dims(x);
        let total = numel(&cur);
        // Resolves 0 (copy) and -1 (infer); None when the shape cannot apply.
        let resolve = |shape: &[i64]| -> Option<Vec<usize>> {
            let mut out = Vec::with_capacity(shape.len());
            let mut infer = None;
            for (i, &s) in shape.iter().enumerate() {
                match s {
                    -1 if infer.is_none() => {
                        infer = Some(i);
                        out.push(1);
                    }
                    0 if !allow_zero => out.push(*cur.get(i)?),
                    s => out.push(usize::try_from(s).ok()?),
                }
            }
            let known = out.iter().try_fold(1usize, |a, &d| a.checked_mul(d))?;
            if let Some(i) = infer {
                if known == 0 || !total.is_multiple_of(known) {
                    return None;
                }
                out[i] = total / known;
            }
            (numel(&out) == total).then_some(out)
        };
        // A file exported at a fixed batch spells that batch in the target; when the batch
        // is overridden, the target follows it.
        let mut wanted = shape.clone();
        if let (Some(fb), Some(s0)) = (self.file_batch, wanted.first_mut()) {
            if *s0 == fb as i64 && cur[0] != fb {
                *s0 = cur[0] as i64;
            }
        }
        let target = resolve(&wanted);
        let flat = [cur[0], total / cur[0].max(1)];
        let y = match target {
            Some(t) if t == cur => Val { t: self.b.identity(x.t, name), rank: x.rank },
            Some(t) if t == flat || t == [flat[0], flat[1], 1, 1] => {
                Val { t: self.b.flatten(x.t, name), rank: t.len() }
            }
            _ => {
                return Err(cx.unsupported(
                    "shape",
                    format!("{shape:?} (input {cur:?})"),
                    "only flattening to [N, C*H*W] or a no-op reshape",
                ))
            }
        };
        self.bind(cx, n, y)
    }

    fn reduce_mean(&mut self, cx: &Cx, n: &NodeProto, name: &str) -> Result<(), OnnxError> {
        let x = self.act4(cx, n)?;
        // Opset 18 moved `axes` from an attribute to an optional input.
        let axes = match self.opt_const(cx, n, 1, "axes")? {
            Some(t) => Some(ints(&t).map_err(cx.tensor())?),
            None => cx.ints(n, "axes")?,
        };
        let keep = cx.flag(n, "keepdims", true)?;
        let mut norm: Vec<Option<usize>> = axes.iter().flatten().map(|&a| norm_axis(a, 4)).collect();
        norm.sort();
        if norm != [Some(2), Some(3)] {
            let shown = axes.map_or("(all)".to_string(), |a| format!("{a:?}"));
            return Err(cx.unsupported("axes", shown, "only the spatial axes [2, 3] (global average pooling)"));
        }
        let [_, _, h, w] = self.dims(x);
        let y = self.b.pool(x.t, name, Pool2d::global_avg(0, 0, 0, 0)).map_err(cx.shape())?;
        self.check_size(cx, y, (h * w) as u64)?;
        let v = if keep {
            Val { t: y, rank: 4 }
        } else {
            let fname = self.fresh(&format!("{name}.flatten"));
            Val { t: self.b.flatten(y, &fname), rank: 2 }
        };
        self.bind(cx, n, v)
    }

    /// Transpose of a constant matrix (a weight the exporter left untransposed).
    fn transpose(&mut self, cx: &Cx, n: &NodeProto) -> Result<(), OnnxError> {
        let t = self.opt_const(cx, n, 0, "input")?.ok_or_else(|| cx.err("input 0 is missing"))?;
        let d = dims_of(&t).map_err(cx.tensor())?;
        let &[r, c] = d.as_slice() else {
            return Err(cx.err(format!("only 2-D constants can be transposed, '{}' has dims {d:?}", t.name)));
        };
        if let Some(perm) = cx.ints(n, "perm")? {
            if perm != [1, 0] {
                return Err(cx.unsupported("perm", format!("{perm:?}"), "only [1, 0]"));
            }
        }
        let out = match self.data(cx, &t)? {
            Some(v) => TensorProto::f32_typed("", &[c, r], &transpose(&v, r, c)),
            None => TensorProto::f32_placeholder("", &[c, r]),
        };
        let o = self.out_name(cx, n)?.to_string();
        self.define_const(cx, n, TensorProto { name: o, ..out })
    }

    fn finish(mut self) -> Result<(Graph, Weights), OnnxError> {
        let out = match self.g.output.as_slice() {
            [o] => o,
            [] => return Err(OnnxError::Model("the graph has no output".into())),
            many => {
                return Err(OnnxError::Model(format!(
                    "the graph has {} outputs; only single-output models are supported",
                    many.len()
                )))
            }
        };
        let Some(v) = self.acts.get(&out.name).copied() else {
            let why = if self.constant(&out.name).is_some() { "a constant" } else { "not produced by any node" };
            return Err(OnnxError::Model(format!("graph output '{}' is {why}", out.name)));
        };
        let graph = self.b.finish(v.t).map_err(|e| OnnxError::Model(format!("invalid graph: {e}")))?;
        if self.load {
            // Every weight the builder declared has data of the right length.
            for node in &graph.nodes {
                for w in &node.weights {
                    match self.weights.get(&w.name) {
                        Some(d) if d.len() == w.len() => {}
                        Some(d) => {
                            return Err(OnnxError::Model(format!(
                                "node '{}': weight '{}' has {} values, the layer needs {}",
                                node.name,
                                w.name,
                                d.len(),
                                w.len()
                            )))
                        }
                        None => {
                            return Err(OnnxError::Model(format!(
                                "node '{}': no data for weight '{}'",
                                node.name, w.name
                            )))
                        }
                    }
                }
            }
        }
        Ok((graph, Weights::from_map(std::mem::take(&mut self.weights))))
    }
}

/// `y` with `x`'s rank.
fn x_like(y: TensorId, x: Val) -> Val {
    Val { t: y, rank: x.rank }
}

/// A possibly negative axis of a rank-`rank` tensor, normalised.
fn norm_axis(axis: i64, rank: usize) -> Option<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    (0..r).contains(&a).then_some(a as usize)
}
