//! CUPTI
