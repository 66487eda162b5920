"""Model card templates (package data: shipped in the wheel as `hf_margin.model_card_templates`)."""
