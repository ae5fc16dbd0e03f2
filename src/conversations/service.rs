//! Business rules of conversations, over a transaction.
