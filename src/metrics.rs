//! Classification and affect metrics (in progress).
