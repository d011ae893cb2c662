"""The audit trail: who changed what, when and from where (issue 16, SPEC section 4)."""
