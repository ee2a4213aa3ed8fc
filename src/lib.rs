//! trustmesh: declarative SSH trust for clusters.
