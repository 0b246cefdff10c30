/**
 * Labels and metrics for the task heads of {@link org.prilora.bert.BertHead}: one-hot and regression targets
 * ({@link org.prilora.heads.SentenceLabels}), per-token labels and label masks from word labels
 * ({@link org.prilora.heads.TokenLabels}), span-level precision/recall/F1 ({@link org.prilora.heads.SpanMetrics}) and
 * Pearson/Spearman correlation ({@link org.prilora.heads.Correlation}).
 */
package org.prilora.heads;
