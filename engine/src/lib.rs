//! eddy engine
