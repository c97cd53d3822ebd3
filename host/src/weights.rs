//! Weight data for a graph: real values (from an ONNX file) or deterministic seeded values
//! (the built-in models), looked up by the weight's name ([`crate::graph::Weight::name`]).

use std::collections::HashMap;
use std::sync::Arc;

/// Weight tensors by name. Cheap to clone (values are shared).
#[derive(Clone, Debug, Default)]
pub struct Weights {
    map: HashMap<String, Arc<Vec<f32>>>,
}

impl Weights {
    /// Weights given by value, e.g. an ONNX file's initializers.
    pub fn from_map(map: HashMap<String, Vec<f32>>) -> Weights {
        Weights { map: map.into_iter().map(|(k, v)| (k, Arc::new(v))).collect() }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Vec<f32>>> {
        self.map.get(name)
    }

    pub fn insert(&mut self, name: impl Into<String>, data: Vec<f32>) {
        self.map.insert(name.into(), Arc::new(data));
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }
}
