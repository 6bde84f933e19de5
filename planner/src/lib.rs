//! eddy planner
