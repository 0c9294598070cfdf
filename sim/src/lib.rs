//! The simulated Kubernetes cluster used by the tests and the demo.
