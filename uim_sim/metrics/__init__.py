"""World-agnostic statistics (`stats`: intervals over seeds, permutation p-values with
the right unit) and group fairness by attribute and intersection (`fairness`)."""
