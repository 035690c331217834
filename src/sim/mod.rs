//! Simulated Azure login + Graph, IFS IAM + OData, and the Flow endpoint (to be written)
