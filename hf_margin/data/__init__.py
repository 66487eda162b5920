"""Data utilities a library user calls: batch scoring with a cached teacher or reward model
(`batch_scoring`, `preference_scoring`, `teacher_scoring`) and training samplers (`samplers`).

The demos' loaders of real data sets live in `hf_margin.demo.data`; the old paths here (`hf_margin.data.faces`,
`hf_margin.data.condensation`, ...) still import, with a `DeprecationWarning` naming the new path.
"""
