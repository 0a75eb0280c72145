"""Reading and writing images: DICOM series in, label maps in and out."""
