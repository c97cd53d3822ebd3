//! The subset of `onnx.proto` (github.com/onnx/onnx, `onnx/onnx.proto`, IR version 10)
//! that describes a CNN inference graph, as `prost` messages with the upstream field
//! numbers and types. Fields not declared here (subgraphs, sparse tensors, functions,
//! training info, metadata) are skipped by the decoder as unknown fields.
//!
//! `onnx.proto` is proto2: its repeated scalars are unpacked unless marked
//! `[packed = true]` (only TensorProto's typed data arrays are), so the messages below
//! encode them the same way; decoding accepts both encodings, as protobuf requires.
//!
//! The small constructors at the bottom build models by hand (tests, fixtures, the
//! exporter); they do no validation.

use bytes::Bytes;

/// `ModelProto`: the file's top-level message.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelProto {
    #[prost(int64, tag = "1")]
    pub ir_version: i64,
    #[prost(message, repeated, tag = "8")]
    pub opset_import: Vec<OperatorSetIdProto>,
    #[prost(string, tag = "2")]
    pub producer_name: String,
    #[prost(string, tag = "3")]
    pub producer_version: String,
    #[prost(string, tag = "4")]
    pub domain: String,
    #[prost(int64, tag = "5")]
    pub model_version: i64,
    #[prost(string, tag = "6")]
    pub doc_string: String,
    #[prost(message, optional, tag = "7")]
    pub graph: Option<GraphProto>,
}

/// `OperatorSetIdProto`: an (operator domain, opset version) pair.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OperatorSetIdProto {
    /// "" (or "ai.onnx") is the default operator set.
    #[prost(string, tag = "1")]
    pub domain: String,
    #[prost(int64, tag = "2")]
    pub version: i64,
}

/// `GraphProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GraphProto {
    /// Nodes in topological order.
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeProto>,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(message, repeated, tag = "5")]
    pub initializer: Vec<TensorProto>,
    #[prost(string, tag = "10")]
    pub doc_string: String,
    #[prost(message, repeated, tag = "11")]
    pub input: Vec<ValueInfoProto>,
    #[prost(message, repeated, tag = "12")]
    pub output: Vec<ValueInfoProto>,
    #[prost(message, repeated, tag = "13")]
    pub value_info: Vec<ValueInfoProto>,
}

/// `NodeProto`: one operator invocation.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeProto {
    /// Value names; "" marks an omitted optional input.
    #[prost(string, repeated, tag = "1")]
    pub input: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    pub output: Vec<String>,
    #[prost(string, tag = "3")]
    pub name: String,
    #[prost(string, tag = "4")]
    pub op_type: String,
    #[prost(string, tag = "7")]
    pub domain: String,
    #[prost(message, repeated, tag = "5")]
    pub attribute: Vec<AttributeProto>,
    #[prost(string, tag = "6")]
    pub doc_string: String,
}

/// `AttributeProto.AttributeType` values used here.
pub mod attr_type {
    pub const UNDEFINED: i32 = 0;
    pub const FLOAT: i32 = 1;
    pub const INT: i32 = 2;
    pub const STRING: i32 = 3;
    pub const TENSOR: i32 = 4;
    pub const FLOATS: i32 = 6;
    pub const INTS: i32 = 7;
}

/// `AttributeProto` (the scalar, list and tensor forms; graphs and sparse tensors are
/// skipped as unknown fields).
#[derive(Clone, PartialEq, prost::Message)]
pub struct AttributeProto {
    #[prost(string, tag = "1")]
    pub name: String,
    /// `AttributeType` (see [`attr_type`]); 0 in files from very old exporters.
    #[prost(int32, tag = "20")]
    pub r#type: i32,
    #[prost(string, tag = "13")]
    pub doc_string: String,
    #[prost(float, tag = "2")]
    pub f: f32,
    #[prost(int64, tag = "3")]
    pub i: i64,
    #[prost(bytes = "vec", tag = "4")]
    pub s: Vec<u8>,
    #[prost(message, optional, tag = "5")]
    pub t: Option<TensorProto>,
    #[prost(float, repeated, packed = "false", tag = "7")]
    pub floats: Vec<f32>,
    #[prost(int64, repeated, packed = "false", tag = "8")]
    pub ints: Vec<i64>,
    #[prost(bytes = "vec", repeated, tag = "9")]
    pub strings: Vec<Vec<u8>>,
}

/// `TensorProto.DataType` values used here.
pub mod data_type {
    pub const UNDEFINED: i32 = 0;
    pub const FLOAT: i32 = 1;
    pub const INT32: i32 = 6;
    pub const INT64: i32 = 7;
    pub const FLOAT16: i32 = 10;
    pub const DOUBLE: i32 = 11;
    pub const BFLOAT16: i32 = 16;
}

/// `TensorProto`: an initializer or constant.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    #[prost(int64, repeated, packed = "false", tag = "1")]
    pub dims: Vec<i64>,
    /// `DataType` (see [`data_type`]).
    #[prost(int32, tag = "2")]
    pub data_type: i32,
    #[prost(float, repeated, tag = "4")]
    pub float_data: Vec<f32>,
    /// INT32, INT16, INT8, UINT16, UINT8, BOOL, FLOAT16 and BFLOAT16 data (the 16-bit
    /// floats as their bit patterns).
    #[prost(int32, repeated, tag = "5")]
    pub int32_data: Vec<i32>,
    #[prost(int64, repeated, tag = "7")]
    pub int64_data: Vec<i64>,
    #[prost(string, tag = "8")]
    pub name: String,
    #[prost(string, tag = "12")]
    pub doc_string: String,
    /// Little-endian packed data of any type; takes precedence over the typed arrays.
    #[prost(bytes = "bytes", tag = "9")]
    pub raw_data: Bytes,
    #[prost(message, repeated, tag = "13")]
    pub external_data: Vec<StringStringEntryProto>,
    /// 0 = DEFAULT (data in this message), 1 = EXTERNAL (in `external_data`'s file).
    #[prost(int32, tag = "14")]
    pub data_location: i32,
    #[prost(double, repeated, tag = "10")]
    pub double_data: Vec<f64>,
    #[prost(uint64, repeated, tag = "11")]
    pub uint64_data: Vec<u64>,
}

/// `StringStringEntryProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StringStringEntryProto {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `ValueInfoProto`: a graph input, output or intermediate value's name and type.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ValueInfoProto {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub r#type: Option<TypeProto>,
    #[prost(string, tag = "3")]
    pub doc_string: String,
}

/// `TypeProto`, tensor types only (sequence, map, optional and sparse types are skipped,
/// leaving `value` empty).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypeProto {
    #[prost(oneof = "type_proto::Value", tags = "1")]
    pub value: Option<type_proto::Value>,
    #[prost(string, tag = "6")]
    pub denotation: String,
}

pub mod type_proto {
    /// `TypeProto.value`.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        #[prost(message, tag = "1")]
        TensorType(Tensor),
    }

    /// `TypeProto.Tensor`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Tensor {
        #[prost(int32, tag = "1")]
        pub elem_type: i32,
        #[prost(message, optional, tag = "2")]
        pub shape: Option<super::TensorShapeProto>,
    }
}

/// `TensorShapeProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeProto {
    #[prost(message, repeated, tag = "1")]
    pub dim: Vec<tensor_shape_proto::Dimension>,
}

pub mod tensor_shape_proto {
    /// `TensorShapeProto.Dimension`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Dimension {
        #[prost(oneof = "dimension::Value", tags = "1, 2")]
        pub value: Option<dimension::Value>,
        #[prost(string, tag = "3")]
        pub denotation: String,
    }

    pub mod dimension {
        /// `TensorShapeProto.Dimension.value`.
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Value {
            #[prost(int64, tag = "1")]
            DimValue(i64),
            #[prost(string, tag = "2")]
            DimParam(String),
        }
    }
}

// ---- Constructors --------------------------------------------------------------------

/// A dimension of a value's shape: fixed (`Fixed(n)`) or symbolic (`Param("batch")`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dim {
    Fixed(i64),
    Param(String),
}

impl From<i64> for Dim {
    fn from(v: i64) -> Self {
        Dim::Fixed(v)
    }
}

impl From<i32> for Dim {
    fn from(v: i32) -> Self {
        Dim::Fixed(v as i64)
    }
}

impl From<usize> for Dim {
    fn from(v: usize) -> Self {
        Dim::Fixed(v as i64)
    }
}

impl From<&str> for Dim {
    fn from(v: &str) -> Self {
        Dim::Param(v.to_string())
    }
}

impl ValueInfoProto {
    /// A tensor value of element type `elem_type` (a [`data_type`] constant) and `shape`.
    pub fn tensor(name: &str, elem_type: i32, shape: &[Dim]) -> Self {
        use tensor_shape_proto::{dimension::Value as V, Dimension};
        let dim = shape
            .iter()
            .map(|d| Dimension {
                value: Some(match d {
                    Dim::Fixed(v) => V::DimValue(*v),
                    Dim::Param(p) => V::DimParam(p.clone()),
                }),
                denotation: String::new(),
            })
            .collect();
        ValueInfoProto {
            name: name.to_string(),
            r#type: Some(TypeProto {
                value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                    elem_type,
                    shape: Some(TensorShapeProto { dim }),
                })),
                denotation: String::new(),
            }),
            doc_string: String::new(),
        }
    }

    /// A float32 tensor value with a fixed shape.
    pub fn f32(name: &str, shape: &[usize]) -> Self {
        let dims: Vec<Dim> = shape.iter().map(|&d| Dim::from(d)).collect();
        ValueInfoProto::tensor(name, data_type::FLOAT, &dims)
    }
}

fn i64_dims(dims: &[usize]) -> Vec<i64> {
    dims.iter().map(|&d| d as i64).collect()
}

impl TensorProto {
    /// A float32 tensor stored as little-endian `raw_data` (how PyTorch writes weights).
    pub fn f32_raw(name: &str, dims: &[usize], data: &[f32]) -> Self {
        let raw: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        TensorProto {
            name: name.to_string(),
            dims: i64_dims(dims),
            data_type: data_type::FLOAT,
            raw_data: Bytes::from(raw),
            ..Default::default()
        }
    }

    /// A float32 tensor stored in `float_data`.
    pub fn f32_typed(name: &str, dims: &[usize], data: &[f32]) -> Self {
        TensorProto {
            name: name.to_string(),
            dims: i64_dims(dims),
            data_type: data_type::FLOAT,
            float_data: data.to_vec(),
            ..Default::default()
        }
    }

    /// A float16 tensor (values rounded to nearest even) stored as `raw_data`.
    pub fn f16_raw(name: &str, dims: &[usize], data: &[f32]) -> Self {
        let raw: Vec<u8> = data.iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes()).collect();
        TensorProto {
            name: name.to_string(),
            dims: i64_dims(dims),
            data_type: data_type::FLOAT16,
            raw_data: Bytes::from(raw),
            ..Default::default()
        }
    }

    /// An int64 tensor (a shape, axes) stored in `int64_data`.
    pub fn i64(name: &str, dims: &[usize], data: &[i64]) -> Self {
        TensorProto {
            name: name.to_string(),
            dims: i64_dims(dims),
            data_type: data_type::INT64,
            int64_data: data.to_vec(),
            ..Default::default()
        }
    }

    /// A float32 tensor with dims but no data: a shape-only placeholder (see
    /// [`super::ExportWeights::ShapesOnly`]); not a valid ONNX tensor.
    pub fn f32_placeholder(name: &str, dims: &[usize]) -> Self {
        TensorProto { name: name.to_string(), dims: i64_dims(dims), data_type: data_type::FLOAT, ..Default::default() }
    }
}

impl AttributeProto {
    pub fn int(name: &str, v: i64) -> Self {
        AttributeProto { name: name.to_string(), r#type: attr_type::INT, i: v, ..Default::default() }
    }

    pub fn ints(name: &str, v: &[i64]) -> Self {
        AttributeProto { name: name.to_string(), r#type: attr_type::INTS, ints: v.to_vec(), ..Default::default() }
    }

    pub fn float(name: &str, v: f32) -> Self {
        AttributeProto { name: name.to_string(), r#type: attr_type::FLOAT, f: v, ..Default::default() }
    }

    pub fn floats(name: &str, v: &[f32]) -> Self {
        AttributeProto { name: name.to_string(), r#type: attr_type::FLOATS, floats: v.to_vec(), ..Default::default() }
    }

    pub fn string(name: &str, v: &str) -> Self {
        AttributeProto {
            name: name.to_string(),
            r#type: attr_type::STRING,
            s: v.as_bytes().to_vec(),
            ..Default::default()
        }
    }

    pub fn tensor(name: &str, t: TensorProto) -> Self {
        AttributeProto { name: name.to_string(), r#type: attr_type::TENSOR, t: Some(t), ..Default::default() }
    }
}

impl NodeProto {
    /// A default-domain node; `inputs` may contain "" for omitted optional inputs.
    pub fn new(op_type: &str, name: &str, inputs: &[&str], outputs: &[&str]) -> Self {
        NodeProto {
            op_type: op_type.to_string(),
            name: name.to_string(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    /// Adds an attribute (builder style).
    pub fn with(mut self, attr: AttributeProto) -> Self {
        self.attribute.push(attr);
        self
    }
}

impl ModelProto {
    /// A model around `graph` importing the default operator set at `opset`, IR version 8
    /// (what opset 13–17 exporters write).
    pub fn new(graph: GraphProto, opset: i64) -> Self {
        ModelProto {
            ir_version: 8,
            opset_import: vec![OperatorSetIdProto { domain: String::new(), version: opset }],
            producer_name: "cnnergy".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            graph: Some(graph),
            ..Default::default()
        }
    }

    /// The protobuf encoding (the `.onnx` file's bytes).
    pub fn to_bytes(&self) -> Vec<u8> {
        prost::Message::encode_to_vec(self)
    }
}
