"""`MarginMSETrainingArguments`: the options of `MarginMSETrainer`."""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import TrainingArguments

from hf_margin._validation import check_choice, check_positive_int


@dataclass
class MarginMSETrainingArguments(TrainingArguments):
    r"""`TrainingArguments` plus the Margin-MSE options (Hofstaetter et al., arXiv 2010.02666).

    Parameters:
        student_type (`str`, *optional*, defaults to `"cross-encoder"`):
            `"cross-encoder"` (an `AutoModelForSequenceClassification` with one output scoring query + passage) or
            `"bi-encoder"` (any `AutoModel`; query and passage embedded separately, then dot or cosine).
        pooling (`str`, *optional*, defaults to `"mean"`):
            Bi-encoder pooling: `"mean"` (masked mean over tokens) or `"cls"` (first token).
        similarity (`str`, *optional*, defaults to `"dot"`):
            Bi-encoder score: `"dot"` or `"cosine"`.
        query_column (`str`, *optional*, defaults to `"query"`):
            The dataset column holding the query.
        passage_columns (`list[str]`, *optional*):
            The passage columns, positive first then the negatives (default: every other column except the
            teacher-score column, in dataset order).
        teacher_column (`str`, *optional*, defaults to `"teacher_scores"`):
            Column with the teacher's (1 + negatives) scores per row; ignored when the trainer gets teachers.
        teacher_aggregation (`str`, *optional*, defaults to `"mean"`):
            How scores of several teachers combine per pair: `"mean"` (the paper's T2), `"median"`, `"max"`,
            `"min"`.
        max_length (`int`, *optional*, defaults to `128`):
            Token budget of a query, a passage, or a query + passage pair.
        in_batch_margins (`bool`, *optional*, defaults to `False`):
            Inter-passage variant: also match the margins between each query's positive and every *other* row's
            passages in the batch. Needs a bi-encoder student and on-the-fly `teachers` (the teachers score all
            batch x passages pairs, which costs batch times more teacher passes).
    """

    student_type: str = field(default="cross-encoder", metadata={"help": "cross-encoder or bi-encoder"})
    pooling: str = field(default="mean", metadata={"help": "bi-encoder pooling: mean or cls"})
    similarity: str = field(default="dot", metadata={"help": "bi-encoder score: dot or cosine"})
    query_column: str = field(default="query", metadata={"help": "the query column"})
    passage_columns: list[str] | None = field(
        default=None, metadata={"help": "passage columns, positive first (default: the other columns)"}
    )
    teacher_column: str = field(default="teacher_scores", metadata={"help": "the teacher-score column"})
    teacher_aggregation: str = field(default="mean", metadata={"help": "mean, median, max or min over teachers"})
    max_length: int = field(default=128, metadata={"help": "token budget per text or pair"})
    in_batch_margins: bool = field(default=False, metadata={"help": "also margins against other rows' passages"})

    def __post_init__(self) -> None:
        check_choice(self.student_type, "student_type", ("cross-encoder", "bi-encoder"))
        check_choice(self.pooling, "pooling", ("mean", "cls"))
        check_choice(self.similarity, "similarity", ("dot", "cosine"))
        check_choice(self.teacher_aggregation, "teacher_aggregation", ("mean", "median", "max", "min"))
        check_positive_int(self.max_length, "max_length")
        # The rows hold texts that the trainer's collator tokenises: keep every column.
        self.remove_unused_columns = False
        super().__post_init__()
