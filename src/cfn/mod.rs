//! The deploy engine: CloudFormation calls (`ops`), the event stream (`events`), the pure stack
//! tree model (`tree`) and root-cause extraction (`cause`).

pub mod cause;
pub mod events;
pub mod ops;
pub mod plan;
pub mod tree;
