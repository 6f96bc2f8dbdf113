"""Hand-made Charades annotation files in the official layout (header, quoted free text)."""
import os

HEADER = "id,subject,scene,quality,relevance,verified,script,objects,descriptions,actions,length"
CLASSES = ["Holding some clothes", "Putting clothes somewhere", "Drinking from a cup/glass/bottle",
           "Opening a door", "Sitting in a chair"]

# Rows as in Charades_v1_*.csv. TRAIN: overlapping intervals of one class (c002 twice) and of two
# classes, a video without actions, descriptions with commas and doubled quotes, and a script
# that spans two lines inside its quotes.
TRAIN_ROWS = [
    '46GP8,HR43,Kitchen,6,7,Yes,"A person cooks food on a stove, then drinks.",food;stove;cup,'
    '"A person is cooking, then ""drinks"" from a cup; the door opens.",'
    'c002 11.90 21.20;c000 0.00 12.60;c002 15.00 30.00;c003 20.1 25.0,33.67',
    'N11GT,0KZ7,Stairs,6,7,Yes,A person walks up the stairs.,stairs,A person walks.,,17.75',
    'ZZ9QK,P72M,Bedroom,7,7,Yes,"Line one,\nline two, of the script",chair,"Sits, then holds clothes",'
    'c004 0.0 10.5;c000 8.0 12.0,30.12',
    'A2B3C,P01A,Hallway,5,6,No,A person opens a door.,door,Opens a door,c003 1.0 4.0,9.50',
]
# TEST: one labelled video with a repeated class, one without actions.
TEST_ROWS = [
    'X0Y1Z,HR43,Living room,6,7,Yes,"Drinks, sits, drinks again",cup;chair,"Drinks, sits",'
    'c002 1.0 3.0;c004 2.0 9.0;c002 7.5 8.5,12.00',
    'EMPTY,HR43,Garage,4,5,Yes,Nothing happens.,,"",,8.00',
]
# What the tool must write for them (video dir Charades_v1_480, ext .mp4).
TRAIN_LIST = ["Charades_v1_480/46GP8.mp4,0,2,3", "Charades_v1_480/ZZ9QK.mp4,0,4", "Charades_v1_480/A2B3C.mp4,3"]
TEST_LIST = ["Charades_v1_480/X0Y1Z.mp4,2,4"]


def write_annotations(folder, train_rows=TRAIN_ROWS, test_rows=TEST_ROWS, classes=CLASSES, header=HEADER) -> str:
    """Write Charades_v1_classes.txt and Charades_v1_{train,test}.csv into ``folder``."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "Charades_v1_classes.txt"), "w") as f:
        f.writelines(f"c{i:03d} {name}\n" for i, name in enumerate(classes))
    for name, rows in (("train", train_rows), ("test", test_rows)):
        with open(os.path.join(folder, f"Charades_v1_{name}.csv"), "w", newline="") as f:
            f.write("\r\n".join([header, *rows]) + "\r\n")
    return str(folder)
