"""The confusion matrix of a classifier: counted, and drawn as a heat map."""
import numpy as np

from .figures import new_figure, save


def confusion_matrix(labels, predictions, num_classes):
    """counts[i, j] = how many samples of true class i were predicted as class j."""
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (np.asarray(labels), np.asarray(predictions)), 1)
    return counts


def plot_confusion_matrix(labels, predictions, classes, path=None, title=None):
    """The confusion matrix as a heat map with counts: rows true class, columns prediction."""
    counts = confusion_matrix(labels, predictions, len(classes))
    figure = new_figure(0.5 * len(classes) + 2.2, 0.5 * len(classes) + 1.6)
    axes = figure.subplots()
    picture = axes.imshow(counts, cmap="Blues")
    for (row, col), value in np.ndenumerate(counts):
        if value:
            axes.text(col, row, str(value), ha="center", va="center", fontsize=8,
                      color="white" if value > counts.max() / 2 else "black")
    axes.set_xticks(range(len(classes)), classes)
    axes.set_yticks(range(len(classes)), classes)
    accuracy = np.trace(counts) / max(1, counts.sum())
    axes.set(xlabel="predicted class", ylabel="true class",
             title=title or f"Confusion matrix (accuracy {100 * accuracy:.1f}%)")
    figure.colorbar(picture, ax=axes, shrink=0.8)
    return save(figure, path)
